//! What the responder saw: per port, the hellos answered, the messages
//! ignored and refused, the connections turned away, and the addresses they
//! came from (a bounded list: TCP peers as proven by their handshake, UDP
//! sources only as claimed, since anyone can forge them), and the words
//! printed at start and at shutdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use super::bind::{Bindings, Skip, Skipped};
use super::holder::Holder;
use super::limit::{Refusal, TOTAL_RATE};
use crate::clean::clean;
use crate::port::Transport;

/// Addresses listed per port; more are counted as "others".
pub const MAX_LISTED: usize = 8;

/// What happened to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A well-formed hello, answered.
    Answered,
    /// Not a hello (wrong size or form), or no hello before the timeout:
    /// no reply.
    Ignored,
    /// A hello refused by a limit: no reply.
    Refused(Refusal),
    /// A TCP connection there was no room for: the busy notice, and a close.
    Busy(Refusal),
}

/// One port's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortTally {
    /// Hellos answered.
    pub answered: u64,
    /// Messages that were not hellos.
    pub ignored: u64,
    /// Hellos refused by a limit.
    pub refused: u64,
    /// TCP connections turned away busy.
    pub busy: u64,
    /// UDP datagrams the kernel dropped unread (a full socket buffer).
    pub lost: u64,
    /// The first addresses seen.
    pub sources: Vec<IpAddr>,
    /// Whether more addresses than those were seen.
    pub others: bool,
}

/// Every port's record.
#[derive(Debug, Default)]
pub struct Tally {
    ports: BTreeMap<(Transport, u16), PortTally>,
    /// UDP hellos refused over the total cap, on every port.
    capped: u64,
    /// UDP datagrams lost unread, on every port.
    lost: u64,
}

impl Tally {
    /// Records `event` on `port` from `source`.
    pub fn record(&mut self, transport: Transport, port: u16, source: IpAddr, event: Event) {
        let t = self.ports.entry((transport, port)).or_default();
        match event {
            Event::Answered => t.answered += 1,
            Event::Ignored => t.ignored += 1,
            Event::Refused(r) => {
                t.refused += 1;
                if r == Refusal::Capped {
                    self.capped += 1;
                }
            }
            Event::Busy(_) => t.busy += 1,
        }
        if !t.sources.contains(&source) {
            if t.sources.len() < MAX_LISTED {
                t.sources.push(source);
            } else {
                t.others = true;
            }
        }
    }

    /// Records `count` datagrams the kernel dropped on UDP `port`.
    pub fn lost(&mut self, port: u16, count: u64) {
        self.ports.entry((Transport::Udp, port)).or_default().lost += count;
        self.lost += count;
    }

    /// The record of one port, if anything arrived on it.
    pub fn get(&self, transport: Transport, port: u16) -> Option<&PortTally> {
        self.ports.get(&(transport, port))
    }
}

/// Consecutive items of `items` with the same key and value, as ranges:
/// `(key, first, last, value)`.
fn runs<K: PartialEq + Copy, V: PartialEq + Clone>(
    items: impl IntoIterator<Item = (K, u16, V)>,
) -> Vec<(K, u16, u16, V)> {
    let mut out: Vec<(K, u16, u16, V)> = Vec::new();
    for (k, port, v) in items {
        match out.last_mut() {
            Some((lk, _, last, lv))
                if *lk == k && *lv == v && last.checked_add(1) == Some(port) =>
            {
                *last = port;
            }
            _ => out.push((k, port, port, v)),
        }
    }
    out
}

fn ports_label(transport: Transport, first: u16, last: u16) -> String {
    if first == last {
        format!("{} {first}", transport.label())
    } else {
        format!("{} {first}-{last}", transport.label())
    }
}

fn skip_words(why: &Skip) -> String {
    match why {
        Skip::Held(Holder::Process { name, pid }) => {
            format!("in use by {} (pid {pid})", clean(name))
        }
        Skip::Held(Holder::User(uid)) => format!("in use by a program of uid {uid}"),
        Skip::Held(Holder::Unknown) => "in use by another program".to_string(),
        Skip::NeedsPrivilege => {
            "ports below 1024 need root or CAP_NET_BIND_SERVICE (start as root with --user NAME)"
                .to_string()
        }
        Skip::Failed(message) => format!("cannot bind: {message}"),
    }
}

/// The lines printed once every port is bound: the ports skipped, then
/// what is answered where.
pub fn started(b: &Bindings, user: Option<(&str, u32)>) -> String {
    let mut s = String::new();
    let mut skipped: Vec<&Skipped> = b.skipped.iter().collect();
    skipped.sort_by_key(|k| (k.address, k.transport, k.port));
    let many_addresses = b.addresses.len() > 1;
    for (key, first, last, why) in runs(
        skipped
            .iter()
            .map(|k| ((k.address, k.transport), k.port, skip_words(&k.why))),
    ) {
        let at = if many_addresses {
            format!(" on {}", key.0)
        } else {
            String::new()
        };
        let _ = writeln!(s, "skipped {}{at}: {why}", ports_label(key.1, first, last));
    }
    let count = |t: Transport| b.bound.iter().filter(|x| x.transport == t).count();
    let (tcp, udp) = (count(Transport::Tcp), count(Transport::Udp));
    let at = if b.dual_stack {
        "every address, IPv4 and IPv6".to_string()
    } else {
        b.addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut what = Vec::new();
    if tcp > 0 {
        what.push(format!("{tcp} TCP"));
    }
    if udp > 0 {
        what.push(format!("{udp} UDP"));
    }
    let per = if b.addresses.len() > 1 {
        " sockets"
    } else {
        " ports"
    };
    let _ = write!(s, "answering hellos on {}{per} at {at}", what.join(" and "));
    if let Some((name, uid)) = user {
        let _ = write!(s, ", as {} (uid {uid})", clean(name));
    }
    s.push('\n');
    s
}

/// Where a port's messages came from: TCP peers `from` the addresses their
/// handshakes proved, UDP sources as `claimed`.
fn sources_words(transport: Transport, t: &PortTally) -> String {
    let mut list: Vec<String> = t.sources.iter().map(ToString::to_string).collect();
    if t.others {
        list.push("others".to_string());
    }
    let list = list.join(", ");
    match transport {
        Transport::Tcp => format!("from {list}"),
        Transport::Udp => format!("claimed sources: {list}"),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report printed at shutdown: a line per port (runs of ports that
/// saw the same grouped into one), then the totals.
pub fn stopped(tally: &Tally, ports: &[(Transport, u16)], ran: Duration, signal: &str) -> String {
    let mut s = format!("stopped by {signal} after {:.1} s\n", ran.as_secs_f64());
    let mut sorted: Vec<(Transport, u16)> = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut silent = 0usize;
    let (mut answered, mut ignored, mut refused, mut busy) = (0u64, 0u64, 0u64, 0u64);
    let mut any_udp = false;
    let seen = sorted.iter().filter_map(|&(t, p)| match tally.get(t, p) {
        Some(x) => Some((t, p, x.clone())),
        None => {
            silent += 1;
            None
        }
    });
    let grouped = runs(seen);
    for (transport, first, last, t) in &grouped {
        let n = u64::from(*last - *first) + 1;
        answered += t.answered * n;
        ignored += t.ignored * n;
        refused += t.refused * n;
        busy += t.busy * n;
        any_udp |= *transport == Transport::Udp;
        let each = if first == last { "" } else { " each" };
        let mut parts = vec![plural(t.answered, "hello answered", "hellos answered")];
        if t.ignored > 0 {
            parts.push(plural(t.ignored, "message ignored", "messages ignored"));
        }
        if t.refused > 0 {
            parts.push(format!(
                "{} over a limit",
                plural(t.refused, "hello", "hellos")
            ));
        }
        if t.busy > 0 {
            parts.push(format!(
                "{} turned away busy",
                plural(t.busy, "connection", "connections")
            ));
        }
        if t.lost > 0 {
            parts.push(format!(
                "{} lost unread",
                plural(t.lost, "datagram", "datagrams")
            ));
        }
        let _ = writeln!(
            s,
            "{}: {}{each}, {}",
            ports_label(*transport, *first, *last),
            parts.join(", "),
            sources_words(*transport, t)
        );
    }
    let busy = if busy > 0 {
        format!(
            "; {} turned away busy (no room)",
            plural(busy, "connection", "connections")
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "{} answered, {} ignored (not a hello), {} refused (over a limit){busy}; {} received nothing",
        plural(answered, "hello", "hellos"),
        plural(ignored, "message", "messages"),
        plural(refused, "hello", "hellos"),
        plural(silent as u64, "port", "ports"),
    );
    let mut flood = Vec::new();
    if tally.capped > 0 {
        flood.push(format!(
            "{} refused over the total cap of {} UDP replies a second",
            plural(tally.capped, "UDP hello", "UDP hellos"),
            TOTAL_RATE as u64,
        ));
    }
    if tally.lost > 0 {
        flood.push(format!(
            "{} lost unread (a full socket buffer)",
            plural(tally.lost, "UDP datagram", "UDP datagrams"),
        ));
    }
    if !flood.is_empty() {
        let _ = writeln!(
            s,
            "{}: a flood, maybe with forged source addresses; replies said so meanwhile, so clients re-checked before calling a port blocked",
            flood.join(", ")
        );
    }
    if any_udp {
        s.push_str(
            "(UDP sources are as the datagrams claim: anyone can forge them. TCP sources completed a handshake.)\n",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_the_same_are_ranges() {
        let r = runs([
            ('t', 1, 'a'),
            ('t', 2, 'a'),
            ('t', 3, 'b'),
            ('t', 5, 'b'),
            ('u', 6, 'b'),
            ('u', 7, 'b'),
        ]);
        assert_eq!(
            r,
            vec![
                ('t', 1, 2, 'a'),
                ('t', 3, 3, 'b'),
                ('t', 5, 5, 'b'),
                ('u', 6, 7, 'b')
            ]
        );
        assert_eq!(runs([('t', 65535, 'a'), ('t', 0, 'a')]).len(), 2);
    }

    #[test]
    fn the_shutdown_report_groups_a_sweep() {
        let a: IpAddr = "198.18.1.2".parse().unwrap();
        let b: IpAddr = "198.18.9.9".parse().unwrap();
        let mut tally = Tally::default();
        for port in 6970..=9999 {
            tally.record(Transport::Udp, port, a, Event::Answered);
        }
        tally.record(Transport::Tcp, 5900, a, Event::Answered);
        tally.record(Transport::Tcp, 5900, b, Event::Ignored);
        tally.record(
            Transport::Tcp,
            5900,
            b,
            Event::Refused(Refusal::RateLimited),
        );
        let mut ports: Vec<_> = (6970..=9999).map(|p| (Transport::Udp, p)).collect();
        ports.push((Transport::Tcp, 5900));
        ports.push((Transport::Tcp, 5988));
        let text = stopped(&tally, &ports, Duration::from_millis(2500), "SIGTERM");
        assert_eq!(
            text,
            "stopped by SIGTERM after 2.5 s\n\
             TCP 5900: 1 hello answered, 1 message ignored, 1 hello over a limit, from 198.18.1.2, 198.18.9.9\n\
             UDP 6970-9999: 1 hello answered each, claimed sources: 198.18.1.2\n\
             3031 hellos answered, 1 message ignored (not a hello), 1 hello refused (over a limit); 1 port received nothing\n\
             (UDP sources are as the datagrams claim: anyone can forge them. TCP sources completed a handshake.)\n"
        );
    }

    #[test]
    fn busy_connections_and_a_capped_flood_are_told_apart() {
        let a: IpAddr = "198.18.0.2".parse().unwrap();
        let mut tally = Tally::default();
        tally.record(Transport::Tcp, 80, a, Event::Answered);
        tally.record(Transport::Tcp, 80, a, Event::Busy(Refusal::Full));
        tally.record(
            Transport::Tcp,
            80,
            a,
            Event::Busy(Refusal::TooManyConnections),
        );
        tally.record(Transport::Udp, 123, a, Event::Refused(Refusal::Capped));
        tally.record(Transport::Udp, 123, a, Event::Refused(Refusal::RateLimited));
        tally.lost(123, 7);
        let ports = [(Transport::Tcp, 80), (Transport::Udp, 123)];
        let text = stopped(&tally, &ports, Duration::from_secs(1), "SIGINT");
        assert_eq!(
            text,
            "stopped by SIGINT after 1.0 s\n\
             TCP 80: 1 hello answered, 2 connections turned away busy, from 198.18.0.2\n\
             UDP 123: 0 hellos answered, 2 hellos over a limit, 7 datagrams lost unread, claimed sources: 198.18.0.2\n\
             1 hello answered, 0 messages ignored (not a hello), 2 hellos refused (over a limit); 2 connections turned away busy (no room); 0 ports received nothing\n\
             1 UDP hello refused over the total cap of 10000 UDP replies a second, 7 UDP datagrams lost unread (a full socket buffer): a flood, maybe with forged source addresses; replies said so meanwhile, so clients re-checked before calling a port blocked\n\
             (UDP sources are as the datagrams claim: anyone can forge them. TCP sources completed a handshake.)\n"
        );
    }

    #[test]
    fn the_list_of_sources_is_bounded() {
        let mut tally = Tally::default();
        for n in 0..1000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(n));
            tally.record(Transport::Udp, 1, ip, Event::Ignored);
        }
        let t = tally.get(Transport::Udp, 1).unwrap();
        assert_eq!(
            (t.sources.len(), t.others, t.ignored),
            (MAX_LISTED, true, 1000)
        );
    }
}
