//! Transports, port ranges and the `--ports` specification language.
//!
//! A port specification is a comma-separated list of `PORT` or `LO-HI`, each
//! optionally followed by `/tcp` or `/udp` (TCP when omitted):
//! `22,80,443,5900-5902/tcp,53/udp`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The transport protocol a port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Transmission Control Protocol.
    Tcp,
    /// User Datagram Protocol.
    Udp,
}

impl Transport {
    /// Lower-case name, as used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    /// Upper-case name, as network engineers write it in prose ("TCP 548").
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = PortSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(PortSpecError::Transport(s.to_string())),
        }
    }
}

/// An inclusive range of port numbers, `start <= end`, both in 1..=65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// A range from `start` to `end` inclusive; fails on port 0 or `start > end`.
    pub fn new(start: u16, end: u16) -> Result<Self, PortSpecError> {
        if start == 0 || end == 0 {
            return Err(PortSpecError::Zero);
        }
        if start > end {
            return Err(PortSpecError::Reversed(start, end));
        }
        Ok(PortRange { start, end })
    }

    /// A range holding one port; fails on port 0.
    pub fn single(port: u16) -> Result<Self, PortSpecError> {
        PortRange::new(port, port)
    }

    /// First port of the range.
    pub fn start(self) -> u16 {
        self.start
    }

    /// Last port of the range.
    pub fn end(self) -> u16 {
        self.end
    }

    /// Number of ports in the range.
    pub fn len(self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Always false: a range holds at least one port. Present for API symmetry.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// Every port of the range, in order.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl FromStr for PortRange {
    type Err = PortSpecError;

    /// Parses `PORT` or `LO-HI`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.split_once('-') {
            Some((lo, hi)) => PortRange::new(parse_port(lo)?, parse_port(hi)?),
            None => PortRange::single(parse_port(s)?),
        }
    }
}

fn parse_port(s: &str) -> Result<u16, PortSpecError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(PortSpecError::Empty);
    }
    match s.parse::<u32>() {
        Ok(0) => Err(PortSpecError::Zero),
        Ok(n) if n <= 65535 => Ok(n as u16),
        Ok(n) => Err(PortSpecError::TooLarge(n.to_string())),
        Err(_) if s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(PortSpecError::TooLarge(s.to_string()))
        }
        Err(_) => Err(PortSpecError::NotANumber(s.to_string())),
    }
}

/// One item of a `--ports` list: a range on one transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortItem {
    /// The transport, TCP unless the item said `/udp`.
    pub transport: Transport,
    /// The ports.
    pub range: PortRange,
}

impl fmt::Display for PortItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.range, self.transport)
    }
}

/// Parses a whole `--ports` value such as `22,80,8000-8010,53/udp`.
pub fn parse_port_list(spec: &str) -> Result<Vec<PortItem>, PortSpecError> {
    if spec.trim().is_empty() {
        return Err(PortSpecError::Empty);
    }
    spec.split(',')
        .map(|item| {
            let item = item.trim();
            let (ports, transport) = match item.rsplit_once('/') {
                Some((ports, transport)) => (ports, transport.parse()?),
                None => (item, Transport::Tcp),
            };
            let range = ports.parse().map_err(|e| PortSpecError::Item {
                item: item.to_string(),
                source: Box::new(e),
            })?;
            Ok(PortItem { transport, range })
        })
        .collect()
}

/// The ports of `items`, each once: each transport's ranges sorted and
/// joined where they overlap or touch, without listing a single port, so
/// that the work is the number of items, however many ports they name.
pub fn merge(items: &[PortItem]) -> Vec<PortItem> {
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<PortItem> = Vec::with_capacity(sorted.len());
    for item in sorted {
        match out.last_mut() {
            Some(last)
                if last.transport == item.transport
                    && u32::from(item.range.start) <= u32::from(last.range.end) + 1 =>
            {
                last.range.end = last.range.end.max(item.range.end);
            }
            _ => out.push(item),
        }
    }
    out
}

/// What was wrong with a port or port specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// Nothing where a port was expected.
    #[error("empty port (expected PORT or LO-HI, e.g. 548 or 6970-9999)")]
    Empty,
    /// Port 0 is not a port that can be probed.
    #[error("port 0 is not a valid port (ports run from 1 to 65535)")]
    Zero,
    /// A number above 65535.
    #[error("port {0} is out of range (ports run from 1 to 65535)")]
    TooLarge(String),
    /// Something that is not a number.
    #[error("`{0}` is not a port number (expected PORT or LO-HI, e.g. 548 or 6970-9999)")]
    NotANumber(String),
    /// `LO-HI` with `LO > HI`.
    #[error("range {0}-{1} runs backwards (write the lower port first: {1}-{0})")]
    Reversed(u16, u16),
    /// A transport suffix other than tcp or udp.
    #[error("unknown protocol `{0}` (expected tcp or udp)")]
    Transport(String),
    /// An error inside one item of a list, with the item quoted.
    #[error("in `{item}`: {source}")]
    Item {
        /// The offending list item.
        item: String,
        /// What was wrong with it.
        source: Box<PortSpecError>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_ports_ranges_and_transports() {
        let items = parse_port_list("22, 80,5900-5902/tcp,53/UDP").unwrap();
        let shown: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        assert_eq!(shown, ["22/tcp", "80/tcp", "5900-5902/tcp", "53/udp"]);
        assert_eq!(items[2].range.len(), 3);
    }

    #[test]
    fn rejects_bad_items_with_a_reason() {
        let cases = [
            ("", "empty port"),
            ("0", "port 0"),
            ("70000", "out of range"),
            ("99999999999999999999", "out of range"),
            ("ssh", "not a port number"),
            ("10-5", "runs backwards"),
            ("53/sctp", "unknown protocol `sctp`"),
            ("22,,80", "empty port"),
            ("1-", "empty port"),
        ];
        for (spec, expected) in cases {
            let err = parse_port_list(spec).unwrap_err().to_string();
            assert!(err.contains(expected), "{spec:?}: {err}");
        }
    }

    #[test]
    fn merging_joins_overlapping_and_touching_ranges_per_transport() {
        let items = parse_port_list("80,1-10,11-20,5-6,53/udp,80,30-40,50/udp,52-54/udp").unwrap();
        let shown: Vec<String> = merge(&items).iter().map(|i| i.to_string()).collect();
        assert_eq!(
            shown,
            ["1-20/tcp", "30-40/tcp", "80/tcp", "50/udp", "52-54/udp"]
        );
        let all = parse_port_list(&vec!["1-65535"; 290].join(",")).unwrap();
        assert_eq!(merge(&all).len(), 1);
        assert!(merge(&[]).is_empty());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Text in the alphabet of port lists, and a little beyond.
        fn spec_like() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[0-9,/ \\-tcpudTCPUD\u{0}\u{1b}x]{0,80}").unwrap()
        }

        fn ranges() -> impl Strategy<Value = Vec<(bool, u16, u16)>> {
            // Ends crowded near both edges of the port space, so that ranges
            // overlap, touch and miss each other by one.
            let end = || prop_oneof![1..=40u16, 65500..=65535u16, 1..=65535u16];
            proptest::collection::vec((any::<bool>(), end(), end()), 0..40)
        }

        fn holds(items: &[PortItem], transport: Transport, port: u32) -> bool {
            items.iter().any(|i| {
                i.transport == transport && u16::try_from(port).is_ok_and(|p| i.range.contains(p))
            })
        }

        /// Whether `a` and `b` hold the same ports: membership changes only
        /// at a range's ends, so comparing it there and beside them is enough.
        fn same_ports(a: &[PortItem], b: &[PortItem]) -> bool {
            a.iter().chain(b).all(|i| {
                let (lo, hi) = (u32::from(i.range.start()), u32::from(i.range.end()));
                [lo - 1, lo, hi, hi + 1].iter().all(|&p| {
                    [Transport::Tcp, Transport::Udp]
                        .iter()
                        .all(|&t| holds(a, t, p) == holds(b, t, p))
                })
            })
        }

        proptest! {
            #[test]
            fn any_text_parses_or_is_refused_with_a_reason(spec in prop_oneof![spec_like(), ".{0,80}"]) {
                match parse_port_list(&spec) {
                    Ok(items) => {
                        prop_assert_eq!(items.len(), spec.split(',').count());
                        for i in &items {
                            prop_assert!(i.range.start() >= 1 && i.range.start() <= i.range.end());
                        }
                        // What is shown parses back to the same.
                        let shown: Vec<String> = items.iter().map(ToString::to_string).collect();
                        prop_assert_eq!(parse_port_list(&shown.join(",")).unwrap(), items);
                    }
                    Err(e) => {
                        let words = e.to_string();
                        prop_assert!(words.contains("port") || words.contains("protocol"), "{}", words);
                    }
                }
            }

            #[test]
            fn merging_keeps_every_port_once_in_order(ranges in ranges()) {
                let items: Vec<PortItem> = ranges
                    .iter()
                    .map(|&(udp, a, b)| PortItem {
                        transport: if udp { Transport::Udp } else { Transport::Tcp },
                        range: PortRange::new(a.min(b), a.max(b)).unwrap(),
                    })
                    .collect();
                let merged = merge(&items);
                prop_assert!(merged.len() <= items.len());
                for w in merged.windows(2) {
                    prop_assert!(
                        w[0].transport < w[1].transport
                            || u32::from(w[0].range.end()) + 1 < u32::from(w[1].range.start()),
                        "{:?}", w
                    );
                }
                prop_assert!(same_ports(&merged, &items));
            }
        }
    }

    #[test]
    fn range_helpers() {
        let r: PortRange = "49152-65535".parse().unwrap();
        assert_eq!(r.len(), 16384);
        assert!(r.contains(65535) && !r.contains(49151));
        assert_eq!(r.iter().count(), 16384);
        assert_eq!(PortRange::single(7).unwrap().to_string(), "7");
    }
}
