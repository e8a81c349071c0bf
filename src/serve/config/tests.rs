use std::os::unix::fs::PermissionsExt;

use super::*;

const GOOD: &str = r#"
listen = "127.0.0.1:9300"
allow = ["127.0.0.1", "192.0.2.0/24"]
concurrency = 64
max_time = "20s"

[labels]
site = "a"
rack = "r\"2"

[modules.ard]
products = ["ARD"]
retries = 2
locate = false
family = "ipv4"

[modules.web]
ports = "80,443,5900-5902,53/udp"
family = "ipv6"
"#;

fn parse_text(text: &str) -> Result<File, Error> {
    parse(text, Path::new("serve.toml"), &Catalog::builtin())
}

fn error(text: &str) -> String {
    parse_text(text).unwrap_err().to_string()
}

#[test]
fn a_whole_file_is_read() {
    let f = parse_text(GOOD).unwrap();
    assert_eq!(f.listen, Some("127.0.0.1:9300".parse().unwrap()));
    assert!(f.allow.is_some_and(|a| !a.is_empty()));
    assert_eq!(f.concurrency, Some(64));
    assert_eq!(f.max_time, Some(Duration::from_secs(20)));
    assert_eq!(f.labels.len(), 2);
    let ard = &f.modules["ard"];
    assert_eq!(ard.products, ["Apple Remote Desktop"]);
    assert!(ard.ports.is_empty());
    assert_eq!(ard.options.retries, Some(2));
    assert_eq!(ard.options.locate, Some(false));
    assert_eq!(ard.options.family, Family::V4);
    assert!(ard.options.responder.is_none());
    let web = &f.modules["web"];
    let ports: Vec<String> = web.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["80/tcp", "443/tcp", "5900-5902/tcp", "53/udp"]);
    assert_eq!(web.options.family, Family::V6);
    assert_eq!(web.options.locate, None);
}

#[test]
fn an_empty_file_is_a_file_with_nothing_in_it() {
    let f = parse_text("").unwrap();
    assert!(f.listen.is_none() && f.allow.is_none() && f.modules.is_empty());
    assert!(f.labels.is_empty());
}

#[test]
fn every_error_names_the_file_line_and_column_and_what_is_right() {
    for (text, says) in [
        (
            "listen = \"127.0.0.1\"\n",
            "serve.toml:1:10: listen must be an address and a port",
        ),
        ("lisen = \"x\"\n", "serve.toml:1:1: unknown field `lisen`"),
        (
            "allow = [\"127.0.0.1\", \"not a host!\"]\n",
            "serve.toml:1:23: allow: ",
        ),
        (
            "concurrency = 0\n",
            "serve.toml:1:15: concurrency must be from 1 to 16384",
        ),
        (
            "concurrency = 99999999999\n",
            "serve.toml:1:15: concurrency must be from 1",
        ),
        (
            "max_time = \"2h\"\n",
            "serve.toml:1:12: max_time: `2h` is too long",
        ),
        ("max_time = 30\n", "serve.toml:1:12: invalid type"),
        (
            "\n[labels]\ntarget = \"x\"\n",
            "serve.toml:3:1: [labels]: label target is one the series carry already",
        ),
        (
            "[labels]\n__x = \"x\"\n",
            "serve.toml:2:1: [labels]: label names starting with __",
        ),
        (
            "[labels]\n\"si te\" = \"x\"\n",
            "serve.toml:2:1: [labels]: label names are a letter",
        ),
        ("[labels]\nsite = 1\n", "serve.toml:2:8: invalid type"),
        (
            "[modules.ard]\nproducts = [\"ADR\"]\n",
            "serve.toml:2:13: [modules.ard]: no product named \"ADR\" (closest: Apple Remote Desktop",
        ),
        (
            "[modules.m]\nports = \"99999\"\n",
            "serve.toml:2:9: [modules.m]: ports: ",
        ),
        (
            "[modules.m]\nretries = 21\n",
            "serve.toml:1:10: [modules.m]: a module needs products",
        ),
        (
            "[modules.m]\nports = \"22\"\nretries = 21\n",
            "serve.toml:3:11: [modules.m]: retries must be from 0 to 20",
        ),
        (
            "[modules.m]\nports = \"22\"\nfamily = \"ipv5\"\n",
            "serve.toml:3:10: unknown variant `ipv5`, expected one of `any`, `ipv4`, `ipv6`",
        ),
        (
            "[modules.m]\nports = \"22\"\nlocate = \"no\"\n",
            "serve.toml:3:10: invalid type",
        ),
        (
            "[modules.m]\nports = \"22\"\ntimeout = \"1s\"\n",
            "serve.toml:3:1: unknown field `timeout`",
        ),
        (
            "[modules.tcp_connect]\nports = \"22\"\n",
            "serve.toml:1:10: [modules.tcp_connect]: tcp_connect is built in",
        ),
        (
            "[modules.\"a b\"]\nports = \"22\"\n",
            "serve.toml:1:10: [modules.a b]: module names are letters",
        ),
        (
            "[modules.m]\nports = \"22\"\nresponder_secret_file = \"/nonexistent/key\"\n",
            "serve.toml:3:25: [modules.m]: responder_secret_file: cannot read the secret file /nonexistent/key",
        ),
        ("listen = \n", "serve.toml:1:10: "),
    ] {
        let e = error(text);
        assert!(e.starts_with(says), "{text:?}:\n  {e}\n  wanted {says}");
        assert!(!e.contains('\n'), "{text:?}: {e}");
    }
}

#[test]
fn an_unknown_key_is_told_the_keys_there_are() {
    let e = error("[modules.m]\nports = \"22\"\nretry = 1\n");
    assert!(
        e.contains("expected one of") || e.contains("docs/exporter-config.md"),
        "{e}"
    );
}

#[test]
fn text_from_the_file_is_neutralised_in_errors() {
    let e = error("[modules.ard]\nproducts = [\"\u{1b}[31mX\"]\n");
    assert!(!e.contains('\u{1b}'), "{e}");
    let e = error("x\u{202e} = 1\n");
    assert!(!e.contains('\u{202e}'), "{e}");
}

#[test]
fn a_responder_secret_follows_the_secret_file_rules_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "a secret of more than sixteen bytes\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = "[modules.far]\nproducts = [\"ARD\"]\nresponder_secret_file = \"key\"\n";
    let path = dir.path().join("serve.toml");
    let f = parse(text, &path, &Catalog::builtin()).unwrap();
    assert!(f.modules["far"].options.responder.is_some());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = parse(text, &path, &Catalog::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(":3:25: [modules.far]: responder_secret_file: the secret file")
            && e.contains("readable by others")
            && e.contains("chmod 600"),
        "{e}"
    );
    std::fs::write(&key, "x".repeat(5000)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = parse(text, &path, &Catalog::builtin())
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 4096 bytes"), "{e}");
}

#[test]
fn a_file_too_large_or_not_a_file_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path(), &Catalog::builtin()).unwrap_err();
    assert_eq!(e.at, None);
    assert!(e.to_string().contains("is not a regular file"), "{e}");
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(MAX_FILE as usize + 1)).unwrap();
    let e = load(&big, &Catalog::builtin()).unwrap_err();
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, b"site = \"\xff\"\n").unwrap();
    let e = load(&bad, &Catalog::builtin()).unwrap_err();
    assert!(e.to_string().contains("is not UTF-8 (byte 8)"), "{e}");
}

#[test]
fn lines_and_columns_count_characters_from_one() {
    assert_eq!(line_column("abc", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 3), (2, 1));
    assert_eq!(line_column("ab\néd", 5), (2, 2));
    assert_eq!(line_column("ab", 99), (1, 3));
}
