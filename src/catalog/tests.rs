//! Tests of the built-in catalog against the article's table, of product
//! lookup, and of the validation of users' catalog files.

use super::*;
use crate::port::parse_port_list;

fn cat() -> Catalog {
    Catalog::builtin()
}

fn entry<'a>(c: &'a Catalog, id: &str) -> &'a Entry {
    c.entry(id).unwrap_or_else(|| panic!("no entry {id}"))
}

fn ranges(e: &Entry) -> Vec<String> {
    e.ports.iter().map(|r| r.to_string()).collect()
}

#[test]
fn every_row_of_the_table_is_present_in_order() {
    let c = cat();
    assert_eq!(c.entries().len(), 107);
    let rows: Vec<u32> = c.entries().iter().map(|e| e.row).collect();
    assert_eq!(rows, (1..=107).collect::<Vec<u32>>());
    let first = &c.entries()[0];
    assert_eq!(
        (first.table_port.as_str(), first.table_protocol.as_str()),
        ("7", "TCP/UDP")
    );
    let last = &c.entries()[106];
    assert_eq!(
        (last.table_port.as_str(), last.service.as_deref()),
        ("50006", Some("FileMaker helper service"))
    );
}

#[test]
fn port_column_matches_parsed_ports_for_every_row() {
    for e in cat().entries() {
        let printed: Vec<String> = e
            .table_port
            .split('&')
            .map(|p| p.trim().to_string())
            .collect();
        assert_eq!(printed, ranges(e), "row {}", e.row);
    }
}

#[test]
fn ranges_are_stored_as_ranges() {
    let c = cat();
    let expect = [
        ("rpc-services", "600-1023", "TCP/UDP"),
        ("xrdiags", "5897-5898", "UDP"),
        ("qtss-rtp", "6970-9999", "UDP"),
        ("web-8000", "8000-8999", "TCP"),
        ("ichat-av-rtp", "16384-16403", "UDP"),
        ("web-cache-24000", "24000-24999", "TCP"),
        ("itunes-radio-streams", "42000-42999", "TCP"),
        ("xsan", "49152-65535", "TCP"),
    ];
    for (id, range, proto) in expect {
        let e = entry(&c, id);
        assert_eq!(ranges(e), [range], "{id}");
        assert_eq!(e.table_protocol, proto, "{id}");
    }
    assert_eq!(
        entry(&c, "rpc-services").transports,
        [Transport::Tcp, Transport::Udp]
    );
}

#[test]
fn rows_with_several_ports_keep_each_port() {
    let c = cat();
    let jboss = entry(&c, "jboss-rmi-iiop");
    assert_eq!(jboss.table_port, "1099 & 8043");
    assert_eq!(ranges(jboss), ["1099", "8043"]);
    let tomcat = entry(&c, "tomcat-jboss-http");
    assert_eq!(tomcat.table_port, "9006 & 8080 & 8443");
    assert_eq!(ranges(tomcat), ["9006", "8080", "8443"]);
}

#[test]
fn rows_without_a_protocol_say_so_and_why_tcp_is_probed() {
    let c = cat();
    for id in ["tomcat-jboss-http", "filemaker-server", "filemaker-helper"] {
        let e = entry(&c, id);
        assert_eq!(e.table_protocol, "-", "{id}");
        assert_eq!(e.transports, [Transport::Tcp], "{id}");
        let reason = e.probe_reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("states no protocol") && reason.contains("TCP"),
            "{id}: {reason}"
        );
    }
    let with_reason = c
        .entries()
        .iter()
        .filter(|e| e.probe_reason.is_some())
        .count();
    assert_eq!(with_reason, 3);
}

#[test]
fn same_port_with_different_services_per_protocol() {
    let c = cat();
    let by_port = |port: u16| -> Vec<(&str, Vec<Transport>)> {
        c.entries()
            .iter()
            .filter(|e| e.ports.iter().any(|r| r.start() == port && r.end() == port))
            .map(|e| (e.label.as_str(), e.transports.clone()))
            .collect()
    };
    assert_eq!(
        by_port(514),
        [
            ("Remote shell", vec![Transport::Tcp]),
            ("Syslog", vec![Transport::Udp])
        ]
    );
    assert_eq!(
        by_port(626),
        [
            ("AppleShare IMAP Admin", vec![Transport::Tcp]),
            ("serialnumberd", vec![Transport::Udp])
        ]
    );
    let rtsp: Vec<_> = by_port(7070);
    assert_eq!(rtsp.len(), 2);
    assert_eq!(
        entry(&c, "rtsp-alt-tcp").service.as_deref(),
        Some(
            "RTSP (Unregistered Use) Automatic Router Configuration Protocol (ARCP - Registered Use)"
        )
    );
    assert_eq!(
        entry(&c, "rtsp-alt-udp").service.as_deref(),
        Some("RTSP alternate")
    );
}

#[test]
fn notes_under_the_table_qualify_their_rows() {
    let c = cat();
    let note = |id: &str| entry(&c, id).note.clone().unwrap_or_default();
    assert!(note("web-performance-cache").contains("16080") && note("http").contains("cache"));
    assert!(note("macos-server-admin").contains("10.3.9") && note("server-admin").contains("311"));
    assert!(note("jabber").contains("5223"));
    assert!(note("pptp").contains("IP protocol 47") && note("pptp").contains("no port probe"));
    assert!(note("l2tp").contains("IP protocol 50"));
    assert!(note("rpc-services").contains("portmap"));
}

#[test]
fn unregistered_flags_follow_the_table() {
    let c = cat();
    let flagged: Vec<&str> = c
        .entries()
        .iter()
        .filter(|e| e.unregistered)
        .map(|e| e.id.as_str())
        .collect();
    let expected: Vec<&str> = c
        .entries()
        .iter()
        .filter(|e| {
            e.service
                .as_deref()
                .is_some_and(|s| s.contains("Unregistered Use"))
        })
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(flagged, expected);
    assert!(
        flagged.contains(&"vnc")
            && flagged.contains(&"password-server")
            && flagged.contains(&"airport-admin")
    );
}

#[test]
fn every_row_and_protocol_belongs_to_a_product_or_other_services() {
    let c = cat();
    let all: Vec<&Product> = c.products().iter().collect();
    let claimed = c.requirements(&all);
    for e in c.entries() {
        for &t in &e.transports {
            for &r in &e.ports {
                assert!(
                    claimed
                        .iter()
                        .any(|q| q.row == Some(e.row) && q.protocol == t && q.range() == r),
                    "row {} ({}) {t} {r} belongs to no product",
                    e.row,
                    e.id
                );
            }
        }
    }
    let others = c.find_product("other services").unwrap();
    assert_eq!(others.name, "Other services");
}

#[test]
fn required_products_exist() {
    let c = cat();
    // What a person types, and the product (canonical name) it must find.
    for (name, canonical) in [
        ("Mac OS X Server", "Mac OS X Server"),
        ("Mac OS X", "Mac OS X"),
        ("Apple Remote Desktop", "Apple Remote Desktop"),
        ("Xsan", "Xsan"),
        ("iChat", "iChat"),
        ("iChat AV", "iChat"),
        ("QuickTime Streaming Server", "QuickTime Streaming Server"),
        ("MobileMe", "MobileMe"),
        ("Mail", "Mail"),
        ("Bonjour", "Bonjour"),
        ("AirPort", "AirPort"),
        ("Final Cut Server", "Final Cut Server"),
        ("iTunes", "iTunes"),
        ("iTunes Store", "iTunes"),
        ("iTunes Radio", "iTunes"),
        ("iTunes Music Sharing", "iTunes"),
        ("VPN", "VPN"),
        ("Open Directory", "Open Directory"),
        ("Workgroup Manager", "Workgroup Manager"),
        ("Server Admin", "Server Admin"),
        ("Back to My Mac", "Back to My Mac"),
        ("Printer Sharing", "Printer Sharing"),
        ("File Sharing", "File Sharing"),
        ("AFP", "File Sharing"),
        ("SMB", "File Sharing"),
        ("Screen Sharing", "Screen Sharing"),
        ("NetBoot", "NetBoot"),
        ("Podcast Capture", "Podcast Capture"),
        ("FileMaker", "FileMaker"),
        ("Software Update", "Software Update"),
        ("Xgrid", "Xgrid"),
        ("Macintosh Manager", "Macintosh Manager"),
        ("Password Server", "Password Server"),
        ("DNS", "DNS Service"),
    ] {
        assert_eq!(
            c.find_product(name).map(|p| p.name.as_str()),
            Ok(canonical),
            "{name}"
        );
        assert!(c.product(canonical).is_some(), "{canonical} is canonical");
    }
}

#[test]
fn apple_remote_desktop_needs_its_ports() {
    let c = cat();
    let ard = c.find_product("Apple Remote Desktop").unwrap();
    let reqs = c.requirements(&[ard]);
    let has = |t: Transport, p: u16| {
        reqs.iter()
            .any(|r| r.protocol == t && r.range().contains(p))
    };
    assert!(has(Transport::Tcp, 3283) && has(Transport::Udp, 3283));
    assert!(has(Transport::Tcp, 5900) && has(Transport::Tcp, 5988));
    assert!(reqs.iter().all(|r| r.products == ["Apple Remote Desktop"]));
}

#[test]
fn mac_os_x_server_includes_its_parts() {
    let c = cat();
    let server = c.find_product("Mac OS X Server").unwrap();
    let reqs = c.requirements(&[server]);
    let has = |t: Transport, p: u16| {
        reqs.iter()
            .any(|r| r.protocol == t && r.range().contains(p))
    };
    // VPN, Password Server, Open Directory, Workgroup Manager, Server Admin.
    for (t, p) in [
        (Transport::Udp, 500),
        (Transport::Udp, 1701),
        (Transport::Tcp, 1723),
        (Transport::Udp, 4500),
        (Transport::Tcp, 106),
        (Transport::Tcp, 3659),
        (Transport::Tcp, 389),
        (Transport::Tcp, 88),
        (Transport::Tcp, 625),
        (Transport::Tcp, 311),
        (Transport::Tcp, 660),
        (Transport::Udp, 626),
    ] {
        assert!(has(t, p), "{t} {p}");
    }
    // Reached through an include, the port still names the product asked for.
    assert!(reqs.iter().all(|r| r.products == ["Mac OS X Server"]));
}

/// The products the server includes, as the catalog states and explains them.
const SERVER_PARTS: [&str; 18] = [
    "VPN",
    "Password Server",
    "Open Directory",
    "Workgroup Manager",
    "Server Admin",
    "File Sharing",
    "Printer Sharing",
    "Mail",
    "Web Service",
    "DNS Service",
    "NetBoot",
    "iChat Server",
    "Software Update",
    "Podcast Capture",
    "Xgrid",
    "QuickTime Streaming Server",
    "Macintosh Manager",
    "Xsan",
];

#[test]
fn mac_os_x_server_serves_the_services_the_table_names() {
    let c = cat();
    let server = c.find_product("Mac OS X Server").unwrap();
    assert_eq!(server.includes, SERVER_PARTS);
    let plan = c.plan(&[server], &[]);
    let products_of = |t: Transport, port: u16| -> Vec<&str> {
        plan.ports
            .iter()
            .find(|p| p.transport == t && p.port == port)
            .unwrap_or_else(|| panic!("{t} {port} is not planned"))
            .products
            .iter()
            .map(String::as_str)
            .collect()
    };
    // Each port names the most specific products: those whose own needs
    // list it, in the order of the service groups.
    for (t, port, products) in [
        (Transport::Tcp, 25, vec!["Mail"]),
        (Transport::Tcp, 548, vec!["File Sharing"]),
        (Transport::Udp, 53, vec!["DNS Service"]),
        (Transport::Udp, 67, vec!["NetBoot"]),
        (Transport::Tcp, 5222, vec!["iChat Server"]),
        (Transport::Tcp, 8170, vec!["Web Service", "Podcast Capture"]),
        (Transport::Tcp, 4111, vec!["Xgrid"]),
        (Transport::Tcp, 631, vec!["Printer Sharing"]),
        (Transport::Tcp, 554, vec!["QuickTime Streaming Server"]),
        (Transport::Tcp, 2236, vec!["Macintosh Manager"]),
        (Transport::Tcp, 24500, vec!["Web Service"]),
        (Transport::Udp, 500, vec!["VPN"]),
        (Transport::Tcp, 106, vec!["Password Server"]),
        (
            Transport::Tcp,
            80,
            vec!["Web Service", "NetBoot", "Software Update"],
        ),
        (
            Transport::Tcp,
            311,
            vec!["Workgroup Manager", "Server Admin", "Xsan"],
        ),
        (
            Transport::Tcp,
            389,
            vec!["Open Directory", "Workgroup Manager", "Mail"],
        ),
        // The server's own need names the server.
        (Transport::Udp, 626, vec!["Mac OS X Server", "Xsan"]),
    ] {
        assert_eq!(products_of(t, port), products, "{t} {port}");
    }
    // The service groups: the server, then what it includes, in order.
    let groups: Vec<&str> = plan.groups.iter().map(|g| g.product.as_str()).collect();
    let mut expected = vec!["Mac OS X Server"];
    expected.extend(SERVER_PARTS);
    assert_eq!(groups, expected);
    // Each group counts the planned ports that name it.
    for g in &plan.groups {
        let naming = plan
            .ports
            .iter()
            .filter(|p| p.products.contains(&g.product))
            .count();
        assert_eq!(g.ports, naming, "{}", g.product);
        assert!(g.ports > 0, "{}", g.product);
    }
    let ichat = plan.groups.iter().find(|g| g.product == "iChat Server");
    assert_eq!(ichat.map(|g| g.ports), Some(4));
}

/// Every planned (transport, port) of `plan` within `lo..=hi`.
fn planned_in(plan: &Plan, t: Transport, lo: u16, hi: u16) -> usize {
    plan.ports
        .iter()
        .filter(|p| p.transport == t && (lo..=hi).contains(&p.port))
        .count()
}

#[test]
fn the_server_leaves_the_media_and_file_system_ranges_to_their_products() {
    let c = cat();
    let server = c.find_product("Mac OS X Server").unwrap();
    let plan = c.plan(&[server], &[]);
    // Of 6970-9999/udp only 7070, RTSP alternate, a row of its own.
    assert_eq!(planned_in(&plan, Transport::Udp, 6970, 9999), 1);
    assert_eq!(planned_in(&plan, Transport::Udp, 7070, 7070), 1);
    assert_eq!(planned_in(&plan, Transport::Tcp, 49152, 65535), 0);
    // The other ports of Xsan are probed with the server.
    assert_eq!(planned_in(&plan, Transport::Tcp, 311, 311), 1);
    let listed: Vec<(Transport, u16, u16, &str, &str, &str)> = plan
        .not_probed
        .iter()
        .map(|n| {
            (
                n.protocol,
                n.port_start,
                n.port_end,
                n.service.as_str(),
                n.product.as_str(),
                n.why.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                Transport::Udp,
                6970,
                9999,
                "QTSS RTP streams",
                "QuickTime Streaming Server",
                "QuickTime Streaming Server RTP media"
            ),
            (
                Transport::Tcp,
                49152,
                65535,
                "Xsan",
                "Xsan",
                "Xsan file system"
            ),
        ]
    );
    // Nor do the listings count them.
    assert!(
        !c.requirements(&[server])
            .iter()
            .any(|r| r.id.as_deref() == Some("qtss-rtp") || r.id.as_deref() == Some("xsan"))
    );
    let (tcp, udp) = c.port_counts(server);
    assert!(tcp < 49152 - 1 && udp < 100, "{tcp} {udp}");
    assert_eq!((tcp, udp), plan.counts());
}

#[test]
fn asking_for_the_product_too_brings_its_range_back() {
    let c = cat();
    let server = c.find_product("Mac OS X Server").unwrap();
    let qtss = c.find_product("QTSS").unwrap();
    for asked in [vec![server, qtss], vec![qtss, server]] {
        let plan = c.plan(&asked, &[]);
        assert_eq!(planned_in(&plan, Transport::Udp, 6970, 9999), 3030);
        let rtp = plan
            .ports
            .iter()
            .find(|p| p.transport == Transport::Udp && p.port == 8000)
            .unwrap();
        assert_eq!(rtp.products, ["QuickTime Streaming Server"]);
        let left: Vec<&str> = plan.not_probed.iter().map(|n| n.product.as_str()).collect();
        assert_eq!(left, ["Xsan"]);
    }
    // Every port of a range named with --ports brings it back too; some of
    // them do not.
    let all = c.plan(&[server], &parse_port_list("49152-65535").unwrap());
    assert_eq!(all.not_probed.len(), 1);
    assert_eq!(all.not_probed[0].product, "QuickTime Streaming Server");
    let some = c.plan(&[server], &parse_port_list("7000/udp").unwrap());
    assert_eq!(some.not_probed.len(), 2);
    let port = some.ports.iter().find(|p| p.port == 7000).unwrap();
    assert!(port.products.is_empty(), "{:?}", port.products);
    // Xsan alone keeps its range.
    let xsan = c.find_product("Xsan").unwrap();
    let plan = c.plan(&[xsan], &[]);
    assert_eq!(planned_in(&plan, Transport::Tcp, 49152, 65535), 16384);
    assert!(plan.not_probed.is_empty());
}

#[test]
fn requirements_merge_products_and_reasons() {
    let c = cat();
    let mail = c.find_product("Mail").unwrap();
    let mobileme = c.find_product("MobileMe").unwrap();
    let reqs = c.requirements(&[mail, mobileme]);
    let smtp = reqs.iter().find(|r| r.port_start == 25).unwrap();
    assert_eq!(smtp.products, ["Mail", "MobileMe"]);
    assert_eq!(smtp.why, ["sending email", "MobileMe Mail sending"]);
    let pop3s: Vec<_> = reqs.iter().filter(|r| r.port_start == 995).collect();
    assert_eq!(pop3s.len(), 1, "Mail needs only TCP 995");
    assert_eq!(pop3s[0].protocol, Transport::Tcp);
}

#[test]
fn all_requirements_list_every_port_and_protocol_of_the_table() {
    let c = cat();
    let all = c.all_requirements();
    let mut expected = 0;
    for e in c.entries() {
        expected += e.transports.len() * e.ports.len();
    }
    assert_eq!(all.len(), expected);
    // A TCP/UDP row gives two entries.
    assert_eq!(
        all.iter()
            .filter(|r| r.id.as_deref() == Some("echo"))
            .count(),
        2
    );
    assert_eq!(
        all.iter()
            .filter(|r| r.id.as_deref() == Some("tomcat-jboss-http"))
            .count(),
        3
    );
}

#[test]
fn port_counts_count_distinct_ports() {
    let c = cat();
    let ard = c.find_product("ARD").unwrap();
    assert_eq!(c.port_counts(ard), (4, 2));
    let xsan = c.find_product("Xsan").unwrap();
    assert_eq!(c.port_counts(xsan), (16385, 1));
}

#[test]
fn aliases_and_loose_spelling_find_products() {
    let c = cat();
    for (typed, canonical) in [
        ("ARD", "Apple Remote Desktop"),
        ("ard", "Apple Remote Desktop"),
        ("Remote Desktop", "Apple Remote Desktop"),
        ("QTSS", "QuickTime Streaming Server"),
        ("OS X Server", "Mac OS X Server"),
        ("mac os x server", "Mac OS X Server"),
        ("MacOSXServer", "Mac OS X Server"),
        ("mac-os-x-server", "Mac OS X Server"),
        ("quicktime", "QuickTime Streaming Server"),
        ("Back to my Mac", "Back to My Mac"),
    ] {
        assert_eq!(
            c.find_product(typed).map(|p| p.name.as_str()),
            Ok(canonical),
            "{typed}"
        );
    }
}

#[test]
fn unknown_names_suggest_the_closest() {
    let c = cat();
    let err = c.find_product("Remote Desktp").unwrap_err();
    let LookupError::NotFound { closest, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        closest.first().map(String::as_str),
        Some("Apple Remote Desktop")
    );
    let text = err.to_string();
    assert!(
        text.contains("no product named \"Remote Desktp\"") && text.contains("portprobe products"),
        "{text}"
    );

    let err = c.find_product("Xsna").unwrap_err();
    assert!(err.to_string().contains("Xsan"), "{err}");

    let err = c.find_product("zzzzqqqq").unwrap_err();
    assert!(
        matches!(err, LookupError::NotFound { ref closest, .. } if closest.is_empty()),
        "{err:?}"
    );

    let err = c.find_product("i").unwrap_err();
    assert!(matches!(err, LookupError::NotFound { .. }), "{err:?}");
}

#[test]
fn ambiguous_beginnings_name_the_candidates() {
    assert_eq!(cat().find_product("itun").unwrap().name, "iTunes");
    let err = cat().find_product("mac").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("could mean")
            && text.contains("Mac OS X Server")
            && text.contains("Macintosh Manager"),
        "{text}"
    );
}

// ----- users' catalog files -----

const GOOD: &str = r#"
[[entry]]
id = "web"
row = 1
label = "HTTP"
table_port = "80"
ports = ["80"]
table_protocol = "TCP"

[[product]]
name = "Intranet"
needs = [{ entry = "web" }]
"#;

fn load_err(text: &str) -> String {
    Catalog::parse(text, "site.toml").unwrap_err().to_string()
}

#[test]
fn a_minimal_user_catalog_loads() {
    let c = Catalog::parse(GOOD, "site.toml").unwrap();
    assert_eq!(c.entries().len(), 1);
    assert_eq!(c.origin(), "site.toml");
    assert_eq!(c.find_product("intranet").unwrap().name, "Intranet");
}

#[test]
fn unknown_fields_are_located() {
    let text = GOOD.replace("label = \"HTTP\"", "label = \"HTTP\"\nlabl = \"typo\"");
    let err = load_err(&text);
    assert!(
        err.starts_with(
            "site.toml: entry 1 (line 2, id \"web\"): field `labl`: unknown field `labl`"
        ),
        "{err}"
    );

    let text = GOOD.replace(
        "name = \"Intranet\"",
        "name = \"Intranet\"\ncolour = \"red\"",
    );
    let err = load_err(&text);
    assert!(
        err.starts_with("site.toml: product 1 (line 10, \"Intranet\"): field `colour`"),
        "{err}"
    );

    let err = load_err(&format!("{GOOD}\n[extra]\nx = 1\n"));
    assert!(
        err.starts_with("site.toml: ") && err.contains("unknown field `extra`"),
        "{err}"
    );
}

#[test]
fn missing_fields_are_located() {
    let text = GOOD.replace("label = \"HTTP\"\n", "");
    let err = load_err(&text);
    assert!(
        err.contains("entry 1 (line 2, id \"web\"): field `label`: missing field `label`"),
        "{err}"
    );
}

#[test]
fn out_of_range_ports_are_located() {
    for (ports, expected) in [
        ("[\"70000\"]", "\"70000\": port 70000 is out of range"),
        ("[\"0\"]", "\"0\": port 0 is not a valid port"),
        ("[\"http\"]", "\"http\": `http` is not a port number"),
        ("[]", "lists no ports"),
    ] {
        let err = load_err(&GOOD.replace("ports = [\"80\"]", &format!("ports = {ports}")));
        assert!(
            err.contains("entry 1 (line 2, id \"web\"): field `ports`: ") && err.contains(expected),
            "{err}"
        );
    }
}

#[test]
fn reversed_ranges_are_located() {
    let err = load_err(&GOOD.replace("ports = [\"80\"]", "ports = [\"90-80\"]"));
    assert!(
        err.contains("field `ports`: \"90-80\": range 90-80 runs backwards"),
        "{err}"
    );
}

#[test]
fn unknown_protocols_are_located() {
    let err = load_err(&GOOD.replace("table_protocol = \"TCP\"", "table_protocol = \"SCTP\""));
    assert!(err.contains("field `table_protocol`: unknown protocol \"SCTP\" (expected \"TCP\", \"UDP\", \"TCP/UDP\" or \"-\")"), "{err}");

    let err = load_err(&GOOD.replace(
        "{ entry = \"web\" }",
        "{ entry = \"web\", protocols = [\"icmp\"] }",
    ));
    assert!(err.contains("product 1 (line 10, \"Intranet\"): field `needs[0].protocols`: unknown protocol \"icmp\""), "{err}");

    let err = load_err(&GOOD.replace(
        "{ entry = \"web\" }",
        "{ entry = \"web\", protocols = [\"udp\"] }",
    ));
    assert!(err.contains("entry \"web\" has no UDP port"), "{err}");

    let err = load_err(&GOOD.replace("table_protocol = \"TCP\"", "table_protocol = \"-\""));
    assert!(
        err.contains("field `probe_protocols`: required when table_protocol is \"-\""),
        "{err}"
    );

    let text = GOOD.replace(
        "table_protocol = \"TCP\"",
        "table_protocol = \"-\"\nprobe_protocols = [\"tcp\"]",
    );
    let err = load_err(&text);
    assert!(err.contains("field `probe_reason`: required"), "{err}");
}

#[test]
fn products_naming_unknown_entries_are_located() {
    let err = load_err(&GOOD.replace("{ entry = \"web\" }", "{ entry = \"wbe\" }"));
    assert!(err.contains("site.toml: product 1 (line 10, \"Intranet\"): field `needs[0].entry`: no entry with id \"wbe\" (closest: web)"), "{err}");

    let err = load_err(&GOOD.replace("needs = ", "includes = [\"Extranet\"]\nneeds = "));
    assert!(
        err.contains("field `includes`: no product named \"Extranet\" (closest: Intranet)"),
        "{err}"
    );
}

/// A server that includes a web service and a streaming service, and
/// leaves the streaming media range to the streaming product.
const LEAVES: &str = r#"
[[entry]]
id = "web"
row = 1
label = "HTTP"
table_port = "80"
ports = ["80"]
table_protocol = "TCP"

[[entry]]
id = "media"
row = 2
label = "Media"
table_port = "6970-9999"
ports = ["6970-9999"]
table_protocol = "TCP/UDP"

[[entry]]
id = "ctl"
row = 3
label = "Control"
table_port = "554"
ports = ["554"]
table_protocol = "TCP/UDP"

[[product]]
name = "Streaming"
needs = [{ entry = "ctl" }, { entry = "media", protocols = ["udp"] }]

[[product]]
name = "Web"
needs = [{ entry = "web" }]

[[product]]
name = "Server"
includes = ["Web", "Streaming"]
needs = [{ entry = "web", why = "admin pages" }]
leaves_out = [{ entry = "media", product = "Streaming", why = "media streams" }]
"#;

/// The error for `LEAVES` with the server's `leaves_out` replaced.
fn leave_err(leaves_out: &str) -> String {
    let text = LEAVES.replace(
        r#"leaves_out = [{ entry = "media", product = "Streaming", why = "media streams" }]"#,
        &format!("leaves_out = {leaves_out}"),
    );
    load_err(&text)
}

#[test]
fn a_product_leaves_out_what_its_includes_need() {
    let c = Catalog::parse(LEAVES, "site.toml").unwrap();
    let server = c.product("Server").unwrap();
    assert_eq!(server.leaves_out[0].transports, [Transport::Udp]);
    let plan = c.plan(&[server], &[]);
    let planned: Vec<String> = plan
        .ports
        .iter()
        .map(|p| format!("{}/{} {}", p.transport, p.port, p.products.join(",")))
        .collect();
    assert_eq!(
        planned,
        [
            "tcp/80 Server,Web",
            "tcp/554 Streaming",
            "udp/554 Streaming"
        ]
    );
    assert_eq!(plan.not_probed.len(), 1);
    let n = &plan.not_probed[0];
    assert_eq!(
        (n.protocol, n.port_start, n.port_end, n.service.as_str()),
        (Transport::Udp, 6970, 9999, "Media")
    );
    assert_eq!(c.port_counts(server), (2, 1));
}

#[test]
fn leaving_out_holds_wherever_the_product_is_included() {
    let text = format!(
        "{LEAVES}
[[product]]
name = \"Campus\"
includes = [\"Server\"]

\
         [[product]]
name = \"Studio\"
includes = [\"Server\", \"Streaming\"]
"
    );
    let c = Catalog::parse(&text, "site.toml").unwrap();
    let campus = c.product("Campus").unwrap();
    let plan = c.plan(&[campus], &[]);
    assert_eq!(plan.counts(), (2, 1));
    assert_eq!(plan.not_probed.len(), 1);
    // Included directly as well, the streaming product needs its range.
    let studio = c.product("Studio").unwrap();
    let plan = c.plan(&[studio], &[]);
    assert_eq!(plan.counts(), (2, 3031));
    assert!(plan.not_probed.is_empty());
    let media = plan.ports.iter().find(|p| p.port == 7000).unwrap();
    assert_eq!(media.products, ["Streaming"]);
}

#[test]
fn bad_leaves_out_are_located() {
    let at = "site.toml: product 3 (line 34, \"Server\"): field ";
    for (leaves_out, field, message) in [
        (
            r#"[{ entry = "medai", product = "Streaming", why = "x" }]"#,
            "leaves_out[0].entry",
            "no entry with id \"medai\" (closest: media)",
        ),
        (
            r#"[{ entry = "web", product = "Web", why = "x" }]"#,
            "leaves_out[0].entry",
            "the product needs entry \"web\" itself (needs[0])",
        ),
        (
            r#"[{ entry = "media", product = "Streaming", why = "x" }, { entry = "media", product = "Streaming", why = "y" }]"#,
            "leaves_out[1].entry",
            "entry \"media\" is left out twice",
        ),
        (
            r#"[{ product = "Streaming", why = "x" }]"#,
            "leaves_out[0].entry",
            "required",
        ),
        (
            r#"[{ entry = "media", why = "x" }]"#,
            "leaves_out[0].product",
            "required",
        ),
        (
            r#"[{ entry = "media", product = "Streaming" }]"#,
            "leaves_out[0].why",
            "required",
        ),
        (
            r#"[{ entry = "media", product = "Streaming", why = "  " }]"#,
            "leaves_out[0].why",
            "required",
        ),
        (
            r#"[{ entry = "media", product = "Streamin", why = "x" }]"#,
            "leaves_out[0].product",
            "no product named \"Streamin\" (closest: Streaming)",
        ),
        (
            r#"[{ entry = "media", product = "Server", why = "x" }]"#,
            "leaves_out[0].product",
            "\"Server\" is not a product that \"Server\" includes",
        ),
        (
            r#"[{ entry = "media", product = "Web", why = "x" }]"#,
            "leaves_out[0].product",
            "product \"Web\" does not need entry \"media\"",
        ),
        (
            r#"[{ entry = "media", product = "Streaming", why = "x", reason = "y" }]"#,
            "reason",
            "unknown field `reason`",
        ),
    ] {
        let err = leave_err(leaves_out);
        assert!(
            err.starts_with(&format!("{at}`{field}`: ")) && err.contains(message),
            "{leaves_out}: {err}"
        );
    }
    // A product the server does not include.
    let text = format!(
        "{}
[[product]]
name = \"Elsewhere\"
needs = [{{ entry = \"media\" }}]
",
        LEAVES.replace(
            "product = \"Streaming\", why",
            "product = \"Elsewhere\", why"
        )
    );
    let err = load_err(&text);
    assert!(
        err.starts_with(&format!("{at}`leaves_out[0].product`: "))
            && err.contains("\"Elsewhere\" is not a product that \"Server\" includes"),
        "{err}"
    );
}

#[test]
fn duplicate_ids_names_and_include_cycles_are_rejected() {
    let dup = format!(
        "{GOOD}\n[[entry]]\nid = \"web\"\nrow = 2\nlabel = \"x\"\ntable_port = \"81\"\nports = [\"81\"]\ntable_protocol = \"TCP\"\n"
    );
    assert!(load_err(&dup).contains(
        "entry 2 (line 14, id \"web\"): field `id`: id \"web\" is used by an earlier entry"
    ));

    let twin =
        format!("{GOOD}\n[[product]]\nname = \"intra-net\"\nneeds = [{{ entry = \"web\" }}]\n");
    assert!(load_err(&twin).contains("\"intra-net\" already names product \"Intranet\""));

    let cycle = format!(
        "{}\n[[product]]\nname = \"B\"\nincludes = [\"Intranet\"]\n",
        GOOD.replace("needs = ", "includes = [\"B\"]\nneeds = ")
    );
    let err = load_err(&cycle);
    assert!(
        err.contains(
            "field `includes`: products include each other in a cycle: Intranet -> B -> Intranet"
        ),
        "{err}"
    );
}

/// `GOOD` and `n` more products, each including the next; the last includes
/// the first when `close` is set.
fn chain(n: usize, close: bool) -> String {
    let mut text = GOOD.to_string();
    for i in 0..n {
        let includes = if i + 1 < n {
            format!("includes = [\"P{}\"]\n", i + 1)
        } else if close {
            "includes = [\"P0\"]\n".to_string()
        } else {
            String::new()
        };
        text.push_str(&format!(
            "\n[[product]]\nname = \"P{i}\"\n{includes}needs = [{{ entry = \"web\" }}]\n"
        ));
    }
    text
}

#[test]
fn long_chains_of_includes_load_and_their_cycles_are_named() {
    // Deep enough to exhaust a thread's stack if the includes were walked
    // by recursion.
    let n = 20_000;
    let c = Catalog::parse(&chain(n, false), "chain.toml").unwrap();
    let first = c.product("P0").unwrap();
    let reqs = c.requirements(&[first]);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].products, ["P0"]);
    assert_eq!(c.port_counts(first), (1, 0));

    let err = load_err(&chain(n, true));
    assert!(
        err.starts_with("site.toml: product 2 (line 14, \"P0\"): field `includes`: products include each other in a cycle: P0 -> P1 -> P2 -> "),
        "{}",
        &err[..200]
    );
    assert!(
        err.ends_with(&format!("-> P{} -> P0", n - 1)),
        "{}",
        &err[err.len() - 200..]
    );
}

/// `n` products in a chain, each needing its own entry (TCP port `i + 1`),
/// including the next, and leaving out the entry the next one needs.
fn leaving_chain(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let port = i + 1;
        text.push_str(&format!(
            "[[entry]]\nid = \"e{i}\"\nrow = {port}\nlabel = \"E{i}\"\ntable_port = \"{port}\"\nports = [\"{port}\"]\ntable_protocol = \"TCP\"\n\n"
        ));
    }
    for i in 0..n {
        let next = i + 1;
        let more = if next < n {
            format!(
                "includes = [\"P{next}\"]\nleaves_out = [{{ entry = \"e{next}\", product = \"P{next}\", why = \"the next one's\" }}]\n"
            )
        } else {
            String::new()
        };
        text.push_str(&format!(
            "[[product]]\nname = \"P{i}\"\nneeds = [{{ entry = \"e{i}\" }}]\n{more}\n"
        ));
    }
    text
}

#[test]
fn long_chains_that_leave_out_at_every_step_load_and_plan() {
    // Each product leaves out one entry, so a plan walks the chain once per
    // entry left out, and loading once per product: time that grows with
    // the square of the chain (a few seconds at this length in a debug
    // build; a walk of every product's full needs per entry left out would
    // grow with its cube and not end).
    let n = 1000;
    let c = Catalog::parse(&leaving_chain(n), "chain.toml").unwrap();
    let first = c.product("P0").unwrap();
    // Every entry but its own is left out on the way down.
    assert_eq!(c.port_counts(first), (1, 0));
    let plan = c.plan(&[first], &[]);
    assert_eq!(plan.counts(), (1, 0));
    assert_eq!(plan.not_probed.len(), n - 1);
    assert_eq!(
        (
            plan.not_probed[0].port_start,
            plan.not_probed[0].product.as_str()
        ),
        (2, "P1")
    );
    // Asking for one in the middle too brings its own port back.
    let middle = c.product("P500").unwrap();
    let plan = c.plan(&[first, middle], &[]);
    let ports: Vec<u16> = plan.ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [1, 501]);
    assert_eq!(plan.not_probed.len(), n - 2);
    assert_eq!(plan.groups.len(), 2);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = load_err("[[entry]]\nid = \"x\nrow = 1\n");
    assert!(err.starts_with("site.toml: line 2, column "), "{err}");
}

#[test]
fn unreadable_files_name_the_file() {
    let err = Catalog::from_file(std::path::Path::new("/nonexistent/site.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read catalog /nonexistent/site.toml"
    );
}
