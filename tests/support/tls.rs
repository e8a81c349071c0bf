//! TLS for the exporter's tests: a throwaway PKI made at test time with
//! rcgen (a CA, a server certificate for 127.0.0.1, client certificates
//! from that CA and from nowhere), written as PEM files, and an HTTPS
//! client over rustls that GETs one path, with or without a client
//! certificate.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::http::{self, Response};

/// PEM files of a CA, a server certificate and key for 127.0.0.1, a client
/// certificate and key the CA signed, and a self-signed client one.
#[derive(Debug)]
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

impl Pki {
    /// Makes the PKI in `dir`.
    pub fn new(dir: &Path) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "portprobe test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |san: &str, usage: ExtendedKeyUsagePurpose| {
            let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, san);
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            (p, key)
        };
        let (server, server_key) = leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
        let server = server.signed_by(&server_key, &issuer).unwrap();
        let (client, client_key) = leaf("prometheus", ExtendedKeyUsagePurpose::ClientAuth);
        let client = client.signed_by(&client_key, &issuer).unwrap();
        let (stranger, stranger_key) = leaf("stranger", ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = stranger.self_signed(&stranger_key).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.crt", ca_cert.pem()),
            server_cert: write("server.crt", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.crt", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            stranger_cert: write("stranger.crt", stranger.pem()),
            stranger_key: write("stranger.key", stranger_key.serialize_pem()),
        }
    }
}

/// GETs `path` over HTTPS from `at`, trusting `ca`, presenting the client
/// certificate and key `client` if given, with `headers`; every read and
/// write bounded by `limit`. An error is a failed connection or handshake,
/// or no HTTP response.
pub fn get(
    at: SocketAddr,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    path: &str,
    headers: &str,
    limit: Duration,
) -> io::Result<Response> {
    get_over(
        rustls::DEFAULT_VERSIONS,
        at,
        ca,
        client,
        path,
        headers,
        limit,
    )
}

/// As [`get`], offering only the TLS `versions`.
pub fn get_over(
    versions: &[&'static rustls::SupportedProtocolVersion],
    at: SocketAddr,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    path: &str,
    headers: &str,
    limit: Duration,
) -> io::Result<Response> {
    // ring, as the exporter uses.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(io::Error::other)? {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(io::Error::other)?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(io::Error::other)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(io::Error::other)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(io::Error::other)?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::IpAddress(at.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let tcp = TcpStream::connect_timeout(&at, limit)?;
    tcp.set_read_timeout(Some(limit))?;
    tcp.set_write_timeout(Some(limit))?;
    http::request(rustls::StreamOwned::new(conn, tcp), at, path, headers)
}

/// The `Authorization` header line of HTTP Basic for `user` and `password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}
