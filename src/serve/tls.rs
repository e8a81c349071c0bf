//! TLS for the exporter, with rustls: the server configuration built from
//! the web configuration's `tls_server_config` (certificate chain and key,
//! TLS versions, client certificates in Go's five modes), and one
//! connection's handshake. The accept loop (`http`) gives the handshake
//! the same deadline as the request head and counts the connection in the
//! same caps; a client that speaks plain HTTP to the TLS port gets a short
//! 400 and the connection closed, as Go's servers answer it.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::webconfig::{ClientAuth, Invalid, TlsSettings, TlsVersion};

/// What a client speaking plain HTTP to the TLS port is told.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

fn invalid(field: &str, path: &Path, why: impl std::fmt::Display) -> Invalid {
    Invalid {
        field: format!("tls_server_config.{field}"),
        why: format!("{}: {why}", path.display()),
    }
}

fn certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(field, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(field, path, e))?;
    if certs.is_empty() {
        return Err(invalid(
            field,
            path,
            "no certificate in it; it should hold PEM blocks `-----BEGIN CERTIFICATE-----`",
        ));
    }
    Ok(certs)
}

/// The TLS server the settings ask for; the error names the field and file.
pub fn acceptor(s: &TlsSettings) -> Result<TlsAcceptor, Invalid> {
    // ring, already a dependency of the tree, rather than rustls' default
    // aws-lc-rs and its C build; rustls marks this provider deprecated only
    // because it has no post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("cert_file", &s.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|e| {
        invalid(
            "key_file",
            &s.key_file,
            format!("{e}; it should hold one PEM private key (PKCS#8, RSA or EC)"),
        )
    })?;
    let roots = match &s.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("client_ca_file", path)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid("client_ca_file", path, e))?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (s.min_version..=s.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| Invalid {
            field: "tls_server_config.min_version".into(),
            why: e.to_string(),
        })?;
    let verifier: Arc<dyn ClientCertVerifier> = match (s.client_auth, roots) {
        (ClientAuth::NoClientCert, _) => WebPkiClientVerifier::no_client_auth(),
        (auth, Some(roots)) if auth.verifies() => {
            let b = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
            let b = if auth.mandatory() {
                b
            } else {
                b.allow_unauthenticated()
            };
            b.build().map_err(|e| Invalid {
                field: "tls_server_config.client_ca_file".into(),
                why: e.to_string(),
            })?
        }
        (auth, _) => Arc::new(AnyCertificate {
            mandatory: auth.mandatory(),
            provider: Arc::clone(&provider),
        }),
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            invalid(
                "key_file",
                &s.key_file,
                format!("does not go with the certificate in cert_file ({e})"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = s.prefer_server_cipher_suites;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a client
/// certificate is asked for and not verified against any CA, though the
/// client must still sign the handshake with its key.
#[derive(Debug)]
struct AnyCertificate {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS handshake on `stream`, or `None` when it failed or the client
/// spoke something else: a client that sent plain HTTP is told so first
/// (one write, never waiting for the client to read it). The caller bounds
/// the time.
pub async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == HANDSHAKE_RECORD => {}
        Ok(1) if first[0].is_ascii_uppercase() => {
            // What of the request has come is read first: closing with
            // unread bytes would reset the connection, and the answer with it.
            let mut sink = [0u8; 4096];
            for _ in 0..4 {
                if !matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {
                    break;
                }
            }
            let _ = stream.try_write(PLAIN_HTTP_ANSWER);
            return None;
        }
        _ => return None,
    }
    acceptor.accept(stream).await.ok()
}
