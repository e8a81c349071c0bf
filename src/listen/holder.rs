//! Who holds a port the responder could not bind: the socket tables of
//! `/proc/net` give the listening socket's inode and owner, and the
//! descriptors under `/proc/PID/fd` the process holding that inode (visible
//! for every process to root, for one's own processes otherwise).

use std::collections::HashMap;
use std::fs;

use crate::port::Transport;

/// Who holds a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A process seen holding the socket.
    Process {
        /// Its command name, as the kernel keeps it (text from outside).
        name: String,
        /// Its process ID.
        pid: u32,
    },
    /// A socket owned by this user, held by no process that can be seen.
    User(u32),
    /// No socket on the port can be seen (another namespace, or gone).
    Unknown,
}

/// One bound socket of a `/proc/net/{tcp,udp}{,6}` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    port: u16,
    uid: u32,
    inode: u64,
}

/// The sockets of one table that hold a port: listening TCP sockets
/// (state 0A) and every UDP socket.
fn parse_table(text: &str, transport: Transport) -> Vec<Entry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            if transport == Transport::Tcp && *state != "0A" {
                return None;
            }
            let (_, port) = local.rsplit_once(':')?;
            Some(Entry {
                port: u16::from_str_radix(port, 16).ok()?,
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The inode of a descriptor's link text, `socket:[INODE]`.
fn socket_inode(link: &str) -> Option<u64> {
    let digits = link.strip_prefix("socket:[")?.strip_suffix(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What this process can see of the holders of ports.
#[derive(Debug, Default)]
pub struct Holders {
    tables: HashMap<Transport, Vec<Entry>>,
    processes: Option<HashMap<u64, (String, u32)>>,
}

impl Holders {
    /// Reads the socket tables once.
    pub fn read() -> Holders {
        let mut tables = HashMap::new();
        for (transport, names) in [
            (Transport::Tcp, ["tcp", "tcp6"]),
            (Transport::Udp, ["udp", "udp6"]),
        ] {
            let entries = names
                .iter()
                .filter_map(|n| fs::read_to_string(format!("/proc/net/{n}")).ok())
                .flat_map(|text| parse_table(&text, transport))
                .collect();
            tables.insert(transport, entries);
        }
        Holders {
            tables,
            processes: None,
        }
    }

    /// The holder of `port`.
    pub fn of(&mut self, transport: Transport, port: u16) -> Holder {
        let Some(entry) = self
            .tables
            .get(&transport)
            .and_then(|t| t.iter().find(|e| e.port == port))
            .copied()
        else {
            return Holder::Unknown;
        };
        let processes = self.processes.get_or_insert_with(socket_owners);
        match processes.get(&entry.inode) {
            Some((name, pid)) => Holder::Process {
                name: name.clone(),
                pid: *pid,
            },
            None => Holder::User(entry.uid),
        }
    }
}

/// Socket inode to (command name, PID), for every process whose
/// descriptors can be read.
fn socket_owners() -> HashMap<u64, (String, u32)> {
    let mut owners = HashMap::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return owners;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let name = fs::read_to_string(p.path().join("comm"))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default();
        for fd in fds.flatten() {
            if let Some(inode) = fs::read_link(fd.path())
                .ok()
                .and_then(|l| socket_inode(&l.to_string_lossy()))
            {
                owners.entry(inode).or_insert_with(|| (name.clone(), pid));
            }
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 653 1 00000000854b65ea 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1
   2: garbage
";
    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  12: 00000000000000000000000000000000:1B3A 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   65534        0 4242 2 0000000000000000 0
";

    #[test]
    fn listening_tcp_sockets_and_every_udp_socket() {
        assert_eq!(
            parse_table(TCP, Transport::Tcp),
            vec![Entry {
                port: 2024,
                uid: 0,
                inode: 653
            }]
        );
        assert_eq!(
            parse_table(UDP6, Transport::Udp),
            vec![Entry {
                port: 6970,
                uid: 65534,
                inode: 4242
            }]
        );
        assert!(parse_table("", Transport::Udp).is_empty());
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[4334]"), Some(4334));
        assert_eq!(socket_inode("pipe:[4334]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    /// A well-formed `/proc/net` line holding `port`, `uid` and `inode`.
    fn table_line(slot: u32, port: u16, state: &str, uid: u32, inode: u64) -> String {
        format!(
            "{slot:4}: 0100007F:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000 {uid:5}        0 {inode} 1 0000000000000000 100 0 0 10 0"
        )
    }

    proptest::proptest! {
        /// Whatever a socket table holds (the kernel's format may change,
        /// and a line may be cut short), reading it never panics and yields
        /// at most one entry per line after the header.
        #[test]
        fn any_table_text_is_read_without_panic(text in "\\PC*(\n\\PC*){0,8}") {
            for transport in [Transport::Tcp, Transport::Udp] {
                let entries = parse_table(&text, transport);
                proptest::prop_assert!(entries.len() <= text.lines().count().saturating_sub(1));
            }
        }

        /// Well-formed lines among garbage give exactly their sockets: TCP
        /// only in state 0A (listening), UDP in any state.
        #[test]
        fn well_formed_lines_among_garbage_are_read_exactly(
            sockets in proptest::collection::vec(
                (proptest::prelude::any::<u16>(), proptest::prelude::any::<u32>(), proptest::prelude::any::<u64>(), proptest::prelude::any::<bool>()),
                0..12,
            ),
            garbage in proptest::collection::vec("[ -~]{0,60}", 0..6),
        ) {
            let mut text = String::from("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
            for (i, &(port, uid, inode, listening)) in sockets.iter().enumerate() {
                let state = if listening { "0A" } else { "01" };
                text.push_str(&table_line(i as u32, port, state, uid, inode));
                text.push('\n');
                if let Some(g) = garbage.get(i) {
                    // Short junk lines never have the ten fields of a socket.
                    let junk: String = g.split_whitespace().take(5).collect::<Vec<_>>().join(" ");
                    text.push_str(&junk);
                    text.push('\n');
                }
            }
            let entry = |&(port, uid, inode, _): &(u16, u32, u64, bool)| Entry { port, uid, inode };
            let udp: Vec<Entry> = sockets.iter().map(entry).collect();
            let tcp: Vec<Entry> = sockets.iter().filter(|s| s.3).map(entry).collect();
            proptest::prop_assert_eq!(parse_table(&text, Transport::Udp), udp);
            proptest::prop_assert_eq!(parse_table(&text, Transport::Tcp), tcp);
        }

        /// A descriptor's link names a socket only as `socket:[DIGITS]`.
        #[test]
        fn only_socket_links_name_an_inode(link in "\\PC{0,40}", inode in proptest::prelude::any::<u64>()) {
            if let Some(n) = socket_inode(&link) {
                let digits = link.strip_prefix("socket:[").and_then(|l| l.strip_suffix(']'));
                proptest::prop_assert!(digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())), "{link}");
                proptest::prop_assert_eq!(digits.and_then(|d| d.parse().ok()), Some(n));
            }
            proptest::prop_assert_eq!(socket_inode(&format!("socket:[+{inode}]")), None);
            proptest::prop_assert_eq!(socket_inode(&format!("socket:[{inode}]")), Some(inode));
        }
    }

    #[test]
    fn this_process_is_seen_holding_its_own_socket() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let mut holders = Holders::read();
        match holders.of(Transport::Tcp, port) {
            Holder::Process { pid, .. } => assert_eq!(pid, std::process::id()),
            other => panic!("{other:?}"),
        }
    }
}
