//! A portprobe JSON report (one target's object, or `{"targets": [...]}`)
//! read back strictly: the fields the rules need must be there with their
//! types, addresses and ports are parsed, never copied as text, and the
//! words taken from it (service and product names) are made safe. The
//! ports it found blocked on the addresses that answered become the ports
//! to allow, with where each was found blocked in the words of the text
//! report.

use std::net::IpAddr;
use std::num::NonZeroU16;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::model::Wanted;
use super::text;
use crate::engine::{Located, Reason, Stop};
use crate::port::Transport;
use crate::report::words;

/// Which address families to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Families {
    /// Leave out IPv6 addresses (`-4`).
    pub v4_only: bool,
    /// Leave out IPv4 addresses (`-6`).
    pub v6_only: bool,
}

impl Families {
    /// Whether rules to `ip` are kept.
    pub fn keep(self, ip: IpAddr) -> bool {
        !(self.v4_only && ip.is_ipv6() || self.v6_only && ip.is_ipv4())
    }
}

/// What a report asks to allow, and the header lines that say where it
/// came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromReport {
    /// The ports to allow.
    pub wanted: Vec<Wanted>,
    /// Header lines (safe text).
    pub notes: Vec<String>,
}

/// Just enough of the document to tell its shape.
#[derive(Deserialize)]
struct Shape {
    targets: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Many {
    targets: Vec<TargetDoc>,
}

#[derive(Deserialize)]
struct TargetDoc {
    target: TargetId,
    error: Option<String>,
    results: Vec<ResultDoc>,
    hosts: Vec<HostDoc>,
    complete: bool,
}

#[derive(Deserialize)]
struct TargetId {
    host: String,
    addresses: Vec<IpAddr>,
}

#[derive(Deserialize)]
struct ResultDoc {
    address: IpAddr,
    protocol: Transport,
    port: NonZeroU16,
    service: String,
    products: Vec<String>,
    #[serde(deserialize_with = "reason")]
    reason: Reason,
    reason_from: Option<IpAddr>,
    blocked: bool,
    located: Option<LocatedDoc>,
}

#[derive(Deserialize)]
struct LocatedDoc {
    after_hop: u8,
    after: Option<IpAddr>,
    /// Absent from reports written before it was added: the next hop.
    before_hop: Option<u8>,
    before: Option<IpAddr>,
    how: How,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum How {
    Dropped,
    Rejected,
    AtHost,
    Unconfirmed,
}

#[derive(Deserialize)]
struct HostDoc {
    address: IpAddr,
    verdict: Verdict,
}

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Answering,
    Silent,
    Unreachable,
}

fn reason<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|()| {
        serde::de::Error::custom(format!(
            "unknown reason `{}` (expected a reason portprobe writes, such as no-response or admin-prohibited)",
            text::safe(&s)
        ))
    })
}

/// Reads `bytes` as a report and picks out what to allow. The error is one
/// line naming the field that is wrong (`results[3].port: invalid value:
/// integer `0`, expected a nonzero u16 at line 1 column 530`).
pub fn parse(bytes: &[u8], families: Families) -> Result<FromReport, String> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        serde_json::from_slice::<IgnoredAny>(bytes).map_err(|e| e.to_string())?;
        return Err("it is JSON, but not an object as a report is".to_string());
    }
    let shape: Shape = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let targets = if shape.targets.is_some() {
        strict::<Many>(bytes)?.targets
    } else {
        vec![strict::<TargetDoc>(bytes)?]
    };
    let mut wanted = Vec::new();
    let mut notes = Vec::new();
    for t in &targets {
        target(t, families, &mut wanted, &mut notes);
    }
    Ok(FromReport { wanted, notes })
}

/// `bytes` as `T`, or the error with the path of the field at fault.
fn strict<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// The ports one target found blocked on its answering addresses, and the
/// header lines that say what was left out and why.
fn target(t: &TargetDoc, families: Families, wanted: &mut Vec<Wanted>, notes: &mut Vec<String>) {
    let host = text::safe(&t.target.host);
    if let Some(e) = &t.error {
        notes.push(format!("{host}: not probed ({}): no rules", text::safe(e)));
        return;
    }
    let addresses: Vec<String> = t.target.addresses.iter().map(ToString::to_string).collect();
    notes.push(format!(
        "from a report on {host} ({}){}",
        addresses.join(", "),
        if t.complete {
            ""
        } else {
            ": incomplete, ports never probed get no rule"
        }
    ));
    let verdict = |a: IpAddr| t.hosts.iter().find(|h| h.address == a).map(|h| h.verdict);
    for h in &t.hosts {
        match h.verdict {
            Verdict::Answering => {}
            Verdict::Silent => notes.push(format!(
                "{}: nothing answered, which a rule cannot fix (is it up, is this its address?): no rules",
                h.address
            )),
            Verdict::Unreachable => notes.push(format!(
                "{}: unreachable, which a rule cannot fix (a route or the host is down): no rules",
                h.address
            )),
        }
    }
    let mut left_out = 0;
    for r in &t.results {
        // A result of an address the report judged nothing of is taken as
        // answering: its ports were probed one by one.
        if !r.blocked || verdict(r.address).is_some_and(|v| v != Verdict::Answering) {
            continue;
        }
        if !families.keep(r.address) {
            left_out += 1;
            continue;
        }
        wanted.push(Wanted {
            destination: r.address,
            transport: r.protocol,
            port: r.port.get(),
            what: what(&r.products, &r.service),
            found: Some(text::safe(&found(r))),
        });
    }
    if left_out > 0 {
        notes.push(format!(
            "{left_out} blocked port{} of the other address family left out (-4/-6)",
            if left_out == 1 { "" } else { "s" }
        ));
    }
}

/// `Apple Remote Desktop: Screen Sharing (VNC)`, or the service alone for a
/// port no product named.
pub fn what(products: &[String], service: &str) -> String {
    let service = text::safe(service);
    if products.is_empty() {
        return service;
    }
    let more = if products.len() > 3 { ", ..." } else { "" };
    let products: Vec<String> = products.iter().take(3).map(|p| text::safe(p)).collect();
    text::safe(&format!("{}{more}: {service}", products.join(", ")))
}

/// Where a port was found blocked, as a phrase that follows the port.
fn found(r: &ResultDoc) -> String {
    if let Some(l) = &r.located {
        let how = match l.how {
            How::Dropped => Stop::Dropped,
            How::Rejected => Stop::Rejected(r.reason),
            How::AtHost => Stop::AtHost,
            How::Unconfirmed => Stop::Unconfirmed,
        };
        return words::located(Located {
            after_hop: l.after_hop,
            after: l.after,
            before_hop: l
                .before_hop
                .unwrap_or_else(|| l.after_hop.saturating_add(1)),
            before: l.before,
            how,
            age: Duration::ZERO,
        });
    }
    match r.reason_from {
        Some(from) => format!("is rejected by {from} ({})", words::reason(r.reason)),
        None => format!("is blocked ({})", words::reason(r.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"target":{"host":"server.local","addresses":["198.18.1.2","2001:db8:1::2"]},
      "results":[
        {"address":"198.18.1.2","protocol":"tcp","port":5900,"service":"Screen Sharing (VNC)",
         "products":["Apple Remote Desktop"],"state":"filtered","reason":"no-response","reason_from":null,
         "blocked":true,"located":{"after_hop":1,"after":"198.18.0.1","before":"198.18.1.2","how":"dropped"}},
        {"address":"198.18.1.2","protocol":"udp","port":3283,"service":"Net Assistant (ARD)",
         "products":["Apple Remote Desktop"],"reason":"icmp-3-5","reason_from":"198.18.0.1",
         "blocked":true,"located":null},
        {"address":"198.18.1.2","protocol":"tcp","port":22,"service":"SSH","products":[],
         "reason":"syn-ack","reason_from":null,"blocked":false,"located":null},
        {"address":"2001:db8:1::2","protocol":"tcp","port":445,"service":"SMB\" accept; #",
         "products":[],"reason":"admin-prohibited","reason_from":"2001:db8::1","blocked":true,
         "located":{"after_hop":1,"after":"2001:db8::1","before":"2001:db8:1::2","how":"rejected"}}
      ],
      "hosts":[{"address":"198.18.1.2","verdict":"answering"},{"address":"2001:db8:1::2","verdict":"answering"}],
      "complete":true,"extra":"fields are welcome"}"#;

    fn lines(r: &FromReport) -> Vec<String> {
        r.wanted
            .iter()
            .map(|w| {
                format!(
                    "{} {}/{} {} | {}",
                    w.destination,
                    w.transport,
                    w.port,
                    w.what,
                    w.found.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn blocked_ports_become_wanted_with_where_they_stop() {
        let r = parse(ONE.as_bytes(), Families::default()).unwrap();
        let rejected = words::located(Located {
            after_hop: 1,
            after: Some("2001:db8::1".parse().unwrap()),
            before_hop: 2,
            before: Some("2001:db8:1::2".parse().unwrap()),
            how: Stop::Rejected(Reason::AdminProhibited),
            age: Duration::ZERO,
        });
        assert_eq!(
            lines(&r),
            [
                format!(
                    "198.18.1.2 tcp/5900 Apple Remote Desktop: Screen Sharing (VNC) | {}",
                    words::located(Located {
                        after_hop: 1,
                        after: Some("198.18.0.1".parse().unwrap()),
                        before_hop: 2,
                        before: Some("198.18.1.2".parse().unwrap()),
                        how: Stop::Dropped,
                        age: Duration::ZERO,
                    })
                ),
                "198.18.1.2 udp/3283 Apple Remote Desktop: Net Assistant (ARD) | is rejected by 198.18.0.1 (ICMP type 3 code 5)".to_string(),
                format!("2001:db8:1::2 tcp/445 SMB? accept? ? | {}", text::safe(&rejected)),
            ]
        );
        assert_eq!(
            r.notes,
            ["from a report on server.local (198.18.1.2, 2001:db8:1::2)"]
        );
        let v4 = parse(
            ONE.as_bytes(),
            Families {
                v4_only: true,
                v6_only: false,
            },
        )
        .unwrap();
        assert_eq!(v4.wanted.len(), 2);
        assert_eq!(
            v4.notes[1],
            "1 blocked port of the other address family left out (-4/-6)"
        );
    }

    #[test]
    fn many_targets_silent_hosts_and_errors() {
        let doc = format!(
            r#"{{"targets":[{ONE},
              {{"target":{{"host":"nosuch.local","addresses":[]}},"error":"cannot resolve","results":[],"hosts":[],"complete":true}},
              {{"target":{{"host":"198.18.1.9","addresses":["198.18.1.9"]}},"results":[
                {{"address":"198.18.1.9","protocol":"tcp","port":22,"service":"SSH","products":[],
                  "reason":"no-response","reason_from":null,"blocked":true,"located":null}}],
               "hosts":[{{"address":"198.18.1.9","verdict":"silent"}}],"complete":false}}],
             "summary":{{}}}}"#
        );
        let r = parse(doc.as_bytes(), Families::default()).unwrap();
        assert_eq!(r.wanted.len(), 3);
        assert_eq!(
            &r.notes[1..],
            [
                "nosuch.local: not probed (cannot resolve): no rules",
                "from a report on 198.18.1.9 (198.18.1.9): incomplete, ports never probed get no rule",
                "198.18.1.9: nothing answered, which a rule cannot fix (is it up, is this its address?): no rules",
            ]
        );
    }

    #[test]
    fn what_is_wrong_is_named_by_its_path() {
        let bad = |from: &str, to: &str| {
            let doc = ONE.replacen(from, to, 1);
            parse(doc.as_bytes(), Families::default()).unwrap_err()
        };
        let e = bad(r#""port":5900"#, r#""port":0"#);
        assert!(
            e.starts_with("results[0].port: invalid value: integer `0`, expected a nonzero u16"),
            "{e}"
        );
        let e = bad(r#""port":5900"#, r#""port":70000"#);
        assert!(e.starts_with("results[0].port: invalid value"), "{e}");
        let e = bad(
            r#""address":"198.18.1.2","protocol""#,
            r#""address":"x;drop","protocol""#,
        );
        assert!(
            e.starts_with("results[0].address: invalid IP address syntax"),
            "{e}"
        );
        let e = bad(r#""protocol":"tcp""#, r#""protocol":"sctp""#);
        assert!(
            e.starts_with("results[0].protocol: unknown variant `sctp`"),
            "{e}"
        );
        let e = bad(r#""how":"dropped""#, r#""how":"vanished""#);
        assert!(
            e.starts_with("results[0].located.how: unknown variant"),
            "{e}"
        );
        let e = bad(r#""reason":"no-response""#, r#""reason":"because""#);
        assert!(
            e.starts_with("results[0].reason: unknown reason `because`"),
            "{e}"
        );
        let e = bad(r#""blocked":true"#, r#""blocked":"yes""#);
        assert!(e.starts_with("results[0].blocked: invalid type"), "{e}");
        let e = bad(r#""complete":true,"#, "");
        assert!(e.starts_with("missing field `complete`"), "{e}");
        let e = parse(b"<html>", Families::default()).unwrap_err();
        assert!(e.starts_with("expected value at line 1 column 1"), "{e}");
        let e = parse(format!("{ONE} {ONE}").as_bytes(), Families::default()).unwrap_err();
        assert!(e.starts_with("trailing characters"), "{e}");
        let e = parse(b"[]", Families::default()).unwrap_err();
        assert_eq!(e, "it is JSON, but not an object as a report is");
        let e = parse(b"", Families::default()).unwrap_err();
        assert!(e.starts_with("EOF while parsing a value"), "{e}");
    }
}
