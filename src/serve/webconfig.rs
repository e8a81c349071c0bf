//! The web configuration file (`--web.config.file`), in the format of the
//! Prometheus exporter toolkit that blackbox_exporter and node_exporter
//! read: `tls_server_config` (a certificate and key, client certificates,
//! TLS versions), `http_server_config` and `basic_auth_users` (user name
//! to bcrypt hash). Parsing is strict, as the toolkit's is: an unknown key
//! is refused, and so is a key of the toolkit's that portprobe does not
//! implement, rather than ignored where ignoring it would weaken what the
//! file asks for. Relative paths are taken from the file's own directory.
//! This module reads the YAML and checks it; `tls` and `auth` build the
//! TLS server and the password check from what it gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The largest web configuration file read: a few users and paths.
const MAX_FILE: u64 = 1024 * 1024;

/// A web configuration file that cannot be used: the field and what is
/// wrong with it (the file is named by whoever shows it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct Invalid {
    /// The field, as a path of YAML keys (`tls_server_config.cert_file`),
    /// or `(file)` for the file as a whole.
    pub field: String,
    /// What is wrong and what would be right.
    pub why: String,
}

fn invalid(field: &str, why: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        why: why.into(),
    }
}

/// Which client certificates the TLS server asks for and checks, as Go's
/// `tls.ClientAuthType` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    NoClientCert,
    /// One is asked for; none, or any, is accepted without verification.
    RequestClientCert,
    /// One is required; any is accepted without verification against a CA
    /// (the client must still prove it holds the certificate's key).
    RequireAnyClientCert,
    /// One is asked for; if given, it must verify against the client CAs.
    VerifyClientCertIfGiven,
    /// One is required and must verify against the client CAs.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    const NAMES: [(&'static str, ClientAuth); 5] = [
        ("NoClientCert", ClientAuth::NoClientCert),
        ("RequestClientCert", ClientAuth::RequestClientCert),
        ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
        (
            "VerifyClientCertIfGiven",
            ClientAuth::VerifyClientCertIfGiven,
        ),
        (
            "RequireAndVerifyClientCert",
            ClientAuth::RequireAndVerifyClientCert,
        ),
    ];

    fn parse(s: &str) -> Option<ClientAuth> {
        match s {
            "" => Some(ClientAuth::NoClientCert),
            // The toolkit's older name, kept there for compatibility.
            "RequireClientCert" => Some(ClientAuth::RequireAnyClientCert),
            _ => Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, a)| *a),
        }
    }

    /// Whether client certificates are verified against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }

    /// Whether a client without a certificate is refused.
    pub fn mandatory(self) -> bool {
        matches!(
            self,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// A TLS protocol version, as the toolkit names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (`TLS10`).
    Tls10,
    /// TLS 1.1 (`TLS11`).
    Tls11,
    /// TLS 1.2 (`TLS12`).
    Tls12,
    /// TLS 1.3 (`TLS13`).
    Tls13,
}

impl TlsVersion {
    fn parse(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "TLS10" => TlsVersion::Tls10,
            "TLS11" => TlsVersion::Tls11,
            "TLS12" => TlsVersion::Tls12,
            "TLS13" => TlsVersion::Tls13,
            _ => return None,
        })
    }
}

/// What `tls_server_config` asks for, checked, with paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Which client certificates are asked for and checked.
    pub client_auth: ClientAuth,
    /// The CAs client certificates are verified against (PEM).
    pub client_ca_file: Option<PathBuf>,
    /// The oldest version offered (TLS 1.2 at the least: rustls has no
    /// older one).
    pub min_version: TlsVersion,
    /// The newest version offered.
    pub max_version: TlsVersion,
    /// Whether the server's order of cipher suites wins over the client's.
    pub prefer_server_cipher_suites: bool,
}

/// A web configuration file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// TLS, when `tls_server_config` sets it up; else plain HTTP.
    pub tls: Option<TlsSettings>,
    /// User names and their bcrypt hashes; empty for no authentication.
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tls_server_config: RawTls,
    #[serde(default)]
    http_server_config: RawHttp,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// The toolkit's rate limiter: not implemented here.
    rate_limit: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    // The toolkit's keys that portprobe refuses (see `unsupported`).
    cert: Option<serde_norway::Value>,
    key: Option<serde_norway::Value>,
    client_ca: Option<serde_norway::Value>,
    cipher_suites: Option<serde_norway::Value>,
    curve_preferences: Option<serde_norway::Value>,
    client_allowed_sans: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted and without effect: the exporter speaks HTTP/1.1 only, and
    /// over TLS offers only `http/1.1` by ALPN, so a client never finds
    /// HTTP/2 whatever this says.
    #[serde(rename = "http2")]
    _http2: Option<bool>,
    headers: Option<serde_norway::Value>,
}

/// Reads and checks the web configuration file at `path`. The error names
/// the field and what would be right; the caller names the file.
pub fn load(path: &Path) -> Result<WebConfig, Invalid> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| invalid("(file)", format!("cannot read it: {e}")))?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| invalid("(file)", format!("cannot read it as UTF-8 text: {e}")))?;
    if text.len() as u64 > MAX_FILE {
        return Err(invalid(
            "(file)",
            format!("larger than {MAX_FILE} bytes; a web configuration is a few lines"),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir)
}

/// Checks the text of a web configuration file whose relative paths are
/// taken from `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, Invalid> {
    // An empty file (or one of comments only) is an empty configuration,
    // as for the toolkit.
    let raw: RawFile = if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        RawFile::default()
    } else {
        let de = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." {
                "(file)".to_string()
            } else {
                field
            };
            let why = one_line(&e.into_inner().to_string());
            // The YAML error may open with the path of the map it is in.
            let why = why
                .split_once(": ")
                .filter(|(at, _)| field.starts_with(at) && !at.contains(' '))
                .map_or(why.as_str(), |(_, rest)| rest)
                .to_string();
            invalid(&field, why)
        })?
    };
    unsupported(&raw)?;
    let tls = tls_settings(&raw.tls_server_config, dir)?;
    let users = raw.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            return Err(invalid(
                "basic_auth_users",
                "a user name must be non-empty, without ':' or control characters (HTTP Basic joins name and password with ':')",
            ));
        }
        crate::serve::auth::check_hash(hash)
            .map_err(|why| invalid(&format!("basic_auth_users.{user}"), why))?;
    }
    Ok(WebConfig { tls, users })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Refuses the toolkit's keys that portprobe does not implement: each
/// either restricts who may connect or what is sent, so ignoring it would
/// serve less safely than the file asks.
fn unsupported(raw: &RawFile) -> Result<(), Invalid> {
    let t = &raw.tls_server_config;
    let refused = [
        (
            t.cert.is_some(),
            "tls_server_config.cert",
            "inline certificates are not supported; put the PEM in a file and name it in cert_file",
        ),
        (
            t.key.is_some(),
            "tls_server_config.key",
            "inline keys are not supported; put the PEM in a file and name it in key_file",
        ),
        (
            t.client_ca.is_some(),
            "tls_server_config.client_ca",
            "inline CAs are not supported; put the PEM in a file and name it in client_ca_file",
        ),
        (
            t.cipher_suites.is_some(),
            "tls_server_config.cipher_suites",
            "not supported: portprobe offers rustls' own suites (TLS 1.3 AES-GCM and ChaCha20-Poly1305, TLS 1.2 ECDHE with AEAD only); remove the key",
        ),
        (
            t.curve_preferences.is_some(),
            "tls_server_config.curve_preferences",
            "not supported: portprobe offers rustls' own groups (X25519, P-256, P-384); remove the key",
        ),
        (
            t.client_allowed_sans.is_some(),
            "tls_server_config.client_allowed_sans",
            "not supported: restrict client certificates by the CA in client_ca_file instead",
        ),
        (
            raw.http_server_config.headers.is_some(),
            "http_server_config.headers",
            "not supported: portprobe sets its own response headers; remove the key",
        ),
        (
            raw.rate_limit.is_some(),
            "rate_limit",
            "not supported: portprobe limits each source address itself; remove the key",
        ),
    ];
    match refused.into_iter().find(|(present, _, _)| *present) {
        Some((_, field, why)) => Err(invalid(field, why)),
        None => Ok(()),
    }
}

fn version(field: &str, value: Option<&str>, default: TlsVersion) -> Result<TlsVersion, Invalid> {
    match value {
        None => Ok(default),
        Some(s) => TlsVersion::parse(s).ok_or_else(|| {
            invalid(
                field,
                format!("{s:?} is not one of TLS10, TLS11, TLS12, TLS13"),
            )
        }),
    }
}

fn tls_settings(t: &RawTls, dir: &Path) -> Result<Option<TlsSettings>, Invalid> {
    let client_auth = ClientAuth::parse(&t.client_auth_type).ok_or_else(|| {
        invalid(
            "tls_server_config.client_auth_type",
            format!(
                "{:?} is not one of {}",
                t.client_auth_type,
                ClientAuth::NAMES.map(|(n, _)| n).join(", ")
            ),
        )
    })?;
    let min_version = version(
        "tls_server_config.min_version",
        t.min_version.as_deref(),
        TlsVersion::Tls12,
    )?;
    let max_version = version(
        "tls_server_config.max_version",
        t.max_version.as_deref(),
        TlsVersion::Tls13,
    )?;
    // As the toolkit: TLS is on when any of its own fields is set.
    let enabled = !t.cert_file.is_empty()
        || !t.key_file.is_empty()
        || !t.client_ca_file.is_empty()
        || !t.client_auth_type.is_empty();
    if !enabled {
        return Ok(None);
    }
    if t.cert_file.is_empty() {
        return Err(invalid(
            "tls_server_config.cert_file",
            "missing: TLS needs the server's certificate (PEM) here",
        ));
    }
    if t.key_file.is_empty() {
        return Err(invalid(
            "tls_server_config.key_file",
            "missing: TLS needs the server's private key (PEM) here",
        ));
    }
    if max_version < TlsVersion::Tls12 {
        return Err(invalid(
            "tls_server_config.max_version",
            "TLS 1.0 and 1.1 are not offered (rustls has neither); use TLS12 or TLS13",
        ));
    }
    if max_version < min_version {
        return Err(invalid(
            "tls_server_config.max_version",
            "is older than min_version; make it the same or newer",
        ));
    }
    if !t.client_ca_file.is_empty() && client_auth == ClientAuth::NoClientCert {
        return Err(invalid(
            "tls_server_config.client_ca_file",
            "set without a client_auth_type that asks for client certificates; set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven",
        ));
    }
    if t.client_ca_file.is_empty() && client_auth.verifies() {
        return Err(invalid(
            "tls_server_config.client_ca_file",
            "missing: client_auth_type verifies client certificates against the CAs in this file",
        ));
    }
    let resolve = |p: &str| dir.join(p);
    Ok(Some(TlsSettings {
        cert_file: resolve(&t.cert_file),
        key_file: resolve(&t.key_file),
        client_auth,
        client_ca_file: (!t.client_ca_file.is_empty()).then(|| resolve(&t.client_ca_file)),
        min_version,
        max_version,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "secret" at cost 4.
    const HASH: &str = "$2b$04$OdHzEIuZdaGxdz2bJZ.d8eMMl2jE3C8QYjm9Z1h/0lk8msxeQoE0a";

    fn parse_in(text: &str) -> Result<WebConfig, Invalid> {
        parse(text, Path::new("/etc/portprobe"))
    }

    fn field_of(text: &str) -> String {
        parse_in(text).unwrap_err().field
    }

    #[test]
    fn the_toolkits_example_parses_with_paths_from_the_files_directory() {
        let c = parse_in(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /keys/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\nhttp_server_config:\n  http2: false\nbasic_auth_users:\n  prometheus: '{HASH}'\n"
        ))
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/portprobe/server.crt"));
        assert_eq!(tls.key_file, Path::new("/keys/server.key"));
        assert_eq!(
            tls.client_ca_file.unwrap(),
            Path::new("/etc/portprobe/ca.crt")
        );
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::Tls13, TlsVersion::Tls13)
        );
        assert_eq!(c.users.get("prometheus").map(String::as_str), Some(HASH));
    }

    #[test]
    fn an_empty_file_or_users_alone_mean_plain_http() {
        for text in ["", "# nothing\n", "{}\n", "tls_server_config: {}\n"] {
            assert_eq!(
                parse_in(text).unwrap(),
                WebConfig {
                    tls: None,
                    users: BTreeMap::new()
                },
                "{text:?}"
            );
        }
        let c = parse_in(&format!("basic_auth_users:\n  alice: {HASH}\n")).unwrap();
        assert!(c.tls.is_none() && c.users.len() == 1);
    }

    #[test]
    fn every_client_auth_type_of_the_toolkit_is_known() {
        for (name, want) in ClientAuth::NAMES {
            let c = parse_in(&format!(
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: {name}\n{}",
                if want != ClientAuth::NoClientCert {
                    "  client_ca_file: ca\n"
                } else {
                    ""
                }
            ))
            .unwrap();
            assert_eq!(c.tls.unwrap().client_auth, want);
        }
        let e = parse_in(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Always\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "tls_server_config.client_auth_type");
        assert!(e.why.contains("RequireAndVerifyClientCert"), "{e}");
    }

    #[test]
    fn incomplete_or_contradictory_tls_is_refused_naming_the_field() {
        let cases = [
            (
                "tls_server_config:\n  key_file: k\n",
                "tls_server_config.cert_file",
            ),
            (
                "tls_server_config:\n  cert_file: c\n",
                "tls_server_config.key_file",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n",
                "tls_server_config.client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n",
                "tls_server_config.client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12\n",
                "tls_server_config.max_version",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  max_version: TLS11\n",
                "tls_server_config.max_version",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: SSL3\n",
                "tls_server_config.min_version",
            ),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(text), field, "{text}");
        }
    }

    #[test]
    fn unknown_and_unimplemented_keys_are_refused() {
        let e = parse_in("tls_server_config:\n  cert_fil: c\n").unwrap_err();
        assert_eq!(e.field, "tls_server_config.cert_fil");
        assert!(
            e.why.contains("unknown field") && e.why.contains("cert_file"),
            "{e}"
        );
        assert_eq!(field_of("basic_auth: {}\n"), "basic_auth");
        for (text, field) in [
            (
                "tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                "tls_server_config.cipher_suites",
            ),
            (
                "tls_server_config:\n  client_allowed_sans: [a]\n",
                "tls_server_config.client_allowed_sans",
            ),
            (
                "tls_server_config:\n  cert: abc\n",
                "tls_server_config.cert",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
                "http_server_config.headers",
            ),
            ("rate_limit:\n  burst: 1\n", "rate_limit"),
        ] {
            assert_eq!(field_of(text), field, "{text}");
        }
        // A value of the wrong type names its field.
        assert_eq!(
            field_of("http_server_config:\n  http2: maybe\n"),
            "http_server_config.http2"
        );
        assert_eq!(field_of("basic_auth_users: [a, b]\n"), "basic_auth_users");
    }

    #[test]
    fn users_need_bcrypt_hashes_of_a_bounded_cost() {
        assert_eq!(
            field_of("basic_auth_users:\n  alice: secret\n"),
            "basic_auth_users.alice"
        );
        // Cost 13: each check would take over half a second of a core.
        let e = parse_in("basic_auth_users:\n  alice: $2y$13$OdHzEIuZdaGxdz2bJZ.d8eMMl2jE3C8QYjm9Z1h/0lk8msxeQoE0a\n").unwrap_err();
        assert_eq!(e.field, "basic_auth_users.alice");
        assert!(e.why.contains("12"), "{e}");
        assert_eq!(
            field_of(&format!("basic_auth_users:\n  'a:b': {HASH}\n")),
            "basic_auth_users"
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../docs/exporter-tls.md");
        let example = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let c = parse_in(example).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(
            tls.client_ca_file.unwrap(),
            Path::new("/etc/portprobe/ca.crt")
        );
        assert!(c.users.contains_key("prometheus"));
    }

    #[test]
    fn a_file_that_is_not_yaml_or_not_text_is_refused() {
        let e = parse_in("tls_server_config: [\n").unwrap_err();
        assert!(e.why.contains("line"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert_eq!(load(&p).unwrap_err().field, "(file)");
        assert!(
            load(&dir.path().join("absent.yml"))
                .unwrap_err()
                .why
                .contains("cannot read")
        );
    }
}
