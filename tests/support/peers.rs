//! Real UDP daemons from Debian's packages, run inside a lab namespace.
//!
//! Each daemon runs in the foreground as
//! `ip netns exec <ns> unshare --mount --propagation private sh -c '…'`:
//! inside its own mount namespace a private directory is bind-mounted over
//! `/run` (and, for avahi, over `/etc/avahi/services`), and every config,
//! state and log file lives under one temporary directory. Nothing outside
//! that directory is written, and nothing is mounted in the host's own mount
//! namespace. Dropping [`Peers`] kills each daemon's process group and every
//! process left in its mount namespace, then removes the directory.
//!
//! Daemons listen on the given address (the server's veth address) and,
//! where they can, on 127.0.0.1 too.
//!
//! Left out, because they cannot work here:
//! - kernel nfsd: this kernel has no `CONFIG_NFSD` or `CONFIG_SUNRPC`, so
//!   2049 is served by the user-space nfs-ganesha instead;
//! - ISC dhcpd: it skips loopback, reads requests through packet sockets and
//!   always answers to udp/68, so a prober never sees its reply; dnsmasq
//!   answers a DHCPINFORM at the request's source address and port;
//! - an SLP server (427): Debian 12 packages none.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::{self, Proto};
use super::proc::{Group, NsId, kill_all, pids_in};

/// Debian packages the peers run from.
pub const PEER_PACKAGES: &[&str] = &[
    "inetutils-inetd",
    "dnsmasq-base",
    "tftpd-hpa",
    "rpcbind",
    "chrony",
    "samba",
    "snmpd",
    "strongswan-charon",
    "strongswan-swanctl",
    "openipmi",
    "xl2tpd",
    "nfs-ganesha",
    "nfs-ganesha-vfs",
    "kamailio",
    "avahi-daemon",
    "rsyslog",
    "iproute2",
    "util-linux",
];

/// How long one daemon may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SNMP community the agent answers.
pub const SNMP_COMMUNITY: &str = "public";
/// NetBIOS name and workgroup nmbd registers.
pub const NETBIOS_NAME: &str = "PEERS";
pub const NETBIOS_WORKGROUP: &str = "PPLAB";
/// A name dnsmasq answers, with the peers' address.
pub const DNS_NAME: &str = "peers.pp.test";
/// A file the TFTP server serves, and its content.
pub const TFTP_FILE: &str = "hello.txt";
pub const TFTP_CONTENT: &str = "portprobe peers lab\n";
/// The pre-shared key of charon's catch-all IKE connection.
pub const IKE_PSK: &str = "pp-peers-lab-psk";
/// IPMI administrator the BMC simulator accepts.
pub const IPMI_USER: &str = "ppadm";
pub const IPMI_PASSWORD: &str = "pptest";
/// mDNS host name avahi announces (`macserver.local`), with an A and an
/// AAAA record, over IPv4 and IPv6 alike.
pub const MDNS_HOST: &str = "macserver";

/// One real daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// inetutils-inetd's internal echo, udp and tcp 7.
    Echo,
    /// dnsmasq as a DNS server, 53.
    Dns,
    /// A second, DHCP-only dnsmasq, 67: answers DHCPINFORM at the source.
    Dhcp,
    /// tftpd-hpa, 69: answers from an ephemeral port.
    Tftp,
    /// rpcbind, 111.
    Rpcbind,
    /// chronyd as an NTP server that never touches the clock, 123.
    Ntp,
    /// samba's nmbd, NetBIOS name service, 137.
    NetbiosNs,
    /// net-snmp's snmpd, 161, community `public`.
    Snmp,
    /// strongswan's charon with one PSK connection loaded, 500 and 4500.
    Ike,
    /// openipmi's BMC simulator, RMCP/IPMI on 623.
    Ipmi,
    /// xl2tpd's control channel, 1701.
    L2tp,
    /// nfs-ganesha (user-space NFS) on 2049, mountd on 20048; needs rpcbind.
    Nfs,
    /// kamailio answering OPTIONS with 200, 5060.
    Sip,
    /// avahi-daemon, mDNS 5353, answering on-link queries only, over IPv4
    /// and IPv6; it announces [`MDNS_HOST`]`.local`.
    Mdns,
    /// rsyslog's imudp, 514: never answers.
    Syslog,
}

impl Peer {
    /// Every peer.
    pub const ALL: &'static [Peer] = &[
        Peer::Echo,
        Peer::Dns,
        Peer::Dhcp,
        Peer::Tftp,
        Peer::Rpcbind,
        Peer::Ntp,
        Peer::NetbiosNs,
        Peer::Snmp,
        Peer::Ike,
        Peer::Ipmi,
        Peer::L2tp,
        Peer::Nfs,
        Peer::Sip,
        Peer::Mdns,
        Peer::Syslog,
    ];

    /// Short name, used for its directory and log file.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Echo => "echo",
            Peer::Dns => "dns",
            Peer::Dhcp => "dhcp",
            Peer::Tftp => "tftp",
            Peer::Rpcbind => "rpcbind",
            Peer::Ntp => "ntp",
            Peer::NetbiosNs => "nbns",
            Peer::Snmp => "snmp",
            Peer::Ike => "ike",
            Peer::Ipmi => "ipmi",
            Peer::L2tp => "l2tp",
            Peer::Nfs => "nfs",
            Peer::Sip => "sip",
            Peer::Mdns => "mdns",
            Peer::Syslog => "syslog",
        }
    }

    /// UDP ports the daemon serves.
    pub fn udp_ports(self) -> &'static [u16] {
        match self {
            Peer::Echo => &[7],
            Peer::Dns => &[53],
            Peer::Dhcp => &[67],
            Peer::Tftp => &[69],
            Peer::Rpcbind => &[111],
            Peer::Ntp => &[123],
            Peer::NetbiosNs => &[137],
            Peer::Snmp => &[161],
            Peer::Ike => &[500, 4500],
            Peer::Ipmi => &[623],
            Peer::L2tp => &[1701],
            Peer::Nfs => &[2049, 20048],
            Peer::Sip => &[5060],
            Peer::Mdns => &[5353],
            Peer::Syslog => &[514],
        }
    }

    /// The daemon's executable.
    pub fn program(self) -> &'static str {
        match self {
            Peer::Echo => "inetutils-inetd",
            Peer::Dns | Peer::Dhcp => "dnsmasq",
            Peer::Tftp => "in.tftpd",
            Peer::Rpcbind => "rpcbind",
            Peer::Ntp => "chronyd",
            Peer::NetbiosNs => "nmbd",
            Peer::Snmp => "snmpd",
            Peer::Ike => "/usr/lib/ipsec/charon",
            Peer::Ipmi => "ipmi_sim",
            Peer::L2tp => "xl2tpd",
            Peer::Nfs => "ganesha.nfsd",
            Peer::Sip => "kamailio",
            Peer::Mdns => "avahi-daemon",
            Peer::Syslog => "rsyslogd",
        }
    }

    /// Executables the daemons in `which` need (with rpcbind for NFS and
    /// swanctl for IKE), for [`super::require_programs`].
    pub fn programs(which: &[Peer]) -> Vec<&'static str> {
        let mut programs: Vec<&'static str> = which.iter().map(|p| p.program()).collect();
        if which.contains(&Peer::Nfs) {
            programs.push("rpcbind");
        }
        if which.contains(&Peer::Ike) {
            programs.push("swanctl");
        }
        programs.extend(["unshare", "mount"]);
        programs.sort_unstable();
        programs.dedup();
        programs
    }

    /// The Debian package the daemon comes from.
    pub fn package(self) -> &'static str {
        match self {
            Peer::Echo => "inetutils-inetd",
            Peer::Dns | Peer::Dhcp => "dnsmasq-base",
            Peer::Tftp => "tftpd-hpa",
            Peer::Rpcbind => "rpcbind",
            Peer::Ntp => "chrony",
            Peer::NetbiosNs => "samba",
            Peer::Snmp => "snmpd",
            Peer::Ike => "strongswan-charon",
            Peer::Ipmi => "openipmi",
            Peer::L2tp => "xl2tpd",
            Peer::Nfs => "nfs-ganesha",
            Peer::Sip => "kamailio",
            Peer::Mdns => "avahi-daemon",
            Peer::Syslog => "rsyslog",
        }
    }
}

/// A started daemon.
#[derive(Debug)]
struct Daemon {
    peer: Peer,
    group: Group,
    mnt: Option<NsId>,
}

/// Running daemons; dropping this stops them all and removes their files.
#[derive(Debug)]
pub struct Peers {
    ns: String,
    addr: Ipv4Addr,
    ifname: String,
    dir: tempfile::TempDir,
    daemons: Vec<Daemon>,
}

impl Peers {
    /// Starts `which` (plus rpcbind when NFS is asked for) inside namespace
    /// `ns`, serving address `addr`, and waits until each is ready. On
    /// failure the error carries the tail of that daemon's log.
    pub fn start(ns: &str, addr: Ipv4Addr, which: &[Peer]) -> io::Result<Peers> {
        let mut wanted: BTreeSet<Peer> = which.iter().copied().collect();
        if wanted.contains(&Peer::Nfs) {
            wanted.insert(Peer::Rpcbind);
        }
        let dir = tempfile::Builder::new().prefix("pp-peers-").tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let mut peers = Peers {
            ns: ns.to_owned(),
            addr,
            ifname: interface_with(ns, addr)?,
            dir,
            daemons: Vec::new(),
        };
        for sub in ["run", "run/lock", "log"] {
            peers.mkdir(sub)?;
        }
        // ganesha registers with rpcbind, so rpcbind must answer first.
        let (first, rest): (Vec<Peer>, Vec<Peer>) =
            wanted.into_iter().partition(|&p| p == Peer::Rpcbind);
        for batch in [first, rest] {
            for &peer in &batch {
                peers.launch(peer)?;
            }
            peers.wait_ready(&batch)?;
        }
        Ok(peers)
    }

    /// The temporary directory holding every config, state and log file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The address the daemons serve.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The namespace the daemons run in.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Which peers are running.
    pub fn running(&self) -> Vec<Peer> {
        self.daemons.iter().map(|d| d.peer).collect()
    }

    /// Process ids of the daemons' group leaders.
    pub fn pids(&self) -> Vec<i32> {
        self.daemons.iter().map(|d| d.group.pid()).collect()
    }

    /// The daemon's own log (stdout and stderr).
    pub fn log(&self, peer: Peer) -> String {
        fs::read_to_string(self.log_path(peer)).unwrap_or_default()
    }

    /// Lines rsyslog wrote for the datagrams it received on 514.
    pub fn syslog_received(&self) -> String {
        fs::read_to_string(self.path("log/syslog-received.log")).unwrap_or_default()
    }

    /// Environment a net-snmp client needs so it writes nothing outside the
    /// peers' directory and loads no MIBs.
    pub fn snmp_client_env(&self) -> Vec<(String, String)> {
        let snmp = self.path("snmp").display().to_string();
        vec![
            ("MIBS".into(), String::new()),
            ("MIBDIRS".into(), snmp.clone()),
            ("SNMP_PERSISTENT_DIR".into(), snmp.clone()),
            ("SNMPCONFPATH".into(), snmp),
        ]
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    fn log_path(&self, peer: Peer) -> PathBuf {
        self.path(&format!("log/{}.log", peer.name()))
    }

    fn mkdir(&self, rel: &str) -> io::Result<PathBuf> {
        let path = self.path(rel);
        fs::create_dir_all(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }

    fn write(&self, rel: &str, text: &str) -> io::Result<()> {
        let path = self.path(rel);
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
    }

    /// Writes the daemon's files and starts it.
    fn launch(&mut self, peer: Peer) -> io::Result<()> {
        let name = peer.name();
        self.mkdir(name)?;
        let argv = self.prepare(peer)?;
        let mut binds = vec![(self.p("run"), "/run".to_owned())];
        if peer == Peer::Mdns {
            binds.push((self.p("mdns/services"), "/etc/avahi/services".to_owned()));
        }
        let mut script = String::from("set -e\n");
        for (from, to) in &binds {
            writeln!(script, "mount --bind '{from}' '{to}'").expect("write to string");
        }
        script.push_str("exec \"$@\"\n");
        let log = fs::File::create(self.log_path(peer))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .args(["unshare", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", &script, name])
            .args(&argv)
            .current_dir(self.path(name))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if peer == Peer::Snmp {
            for (k, v) in self.snmp_client_env() {
                cmd.env(k, v);
            }
        }
        if peer == Peer::Ike {
            cmd.env("STRONGSWAN_CONF", self.p("ike/strongswan.conf"));
        }
        let group = Group::spawn(&mut cmd)?;
        self.daemons.push(Daemon {
            peer,
            group,
            mnt: None,
        });
        Ok(())
    }

    /// Waits until every peer in `batch` is ready.
    fn wait_ready(&mut self, batch: &[Peer]) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<Peer> = batch.to_vec();
        while !pending.is_empty() {
            let bound = netns::bound_ports(&self.ns, Proto::Udp)?;
            let mut still = Vec::new();
            for peer in pending {
                let daemon = self
                    .daemons
                    .iter_mut()
                    .find(|d| d.peer == peer)
                    .expect("launched");
                if let Some(status) = daemon.group.exited() {
                    return Err(self.failure(peer, &format!("exited early ({status})")));
                }
                if daemon.mnt.is_none() {
                    daemon.mnt = NsId::of_pid(daemon.group.pid(), "mnt").ok();
                }
                let ports_up = peer.udp_ports().iter().all(|p| bound.contains(p));
                if !(ports_up && self.extra_ready(peer)?) {
                    still.push(peer);
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let peer = pending[0];
                return Err(self.failure(
                    peer,
                    &format!(
                        "not ready after {READY_TIMEOUT:?} (udp ports bound in {}: {bound:?})",
                        self.ns
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Record the mount namespaces now that each leader has exec'd its
        // daemon (ip and unshare ran first under the same pid).
        for d in &mut self.daemons {
            if let Ok(id) = NsId::of_pid(d.group.pid(), "mnt") {
                d.mnt = Some(id);
            }
        }
        Ok(())
    }

    /// Readiness beyond the ports being bound.
    fn extra_ready(&self, peer: Peer) -> io::Result<bool> {
        Ok(match peer {
            // Loading the connection proves charon's control socket works.
            Peer::Ike => {
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &self.ns,
                        "swanctl",
                        "--load-all",
                        "--noprompt",
                    ])
                    .args(["--file", &self.p("ike/swanctl.conf")])
                    .args(["--uri", &format!("unix://{}", self.p("ike/charon.vici"))])
                    .stdin(Stdio::null())
                    .output()?;
                out.status.success()
            }
            // avahi answers only once its host name has been probed.
            Peer::Mdns => self.log(peer).contains("Server startup complete"),
            _ => true,
        })
    }

    fn failure(&self, peer: Peer, what: &str) -> io::Error {
        let log = self.log(peer);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        io::Error::other(format!(
            "peer {} ({}) {what}; log {}:\n{tail}",
            peer.name(),
            peer.package(),
            self.log_path(peer).display()
        ))
    }

    /// Writes the daemon's config and returns its command line.
    fn prepare(&self, peer: Peer) -> io::Result<Vec<String>> {
        let addr = self.addr;
        let ifname = &self.ifname;
        let dir = |rel: &str| self.p(rel);
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        Ok(match peer {
            Peer::Echo => {
                self.write(
                    "echo/inetd.conf",
                    "echo dgram udp wait root internal\necho stream tcp nowait root internal\n",
                )?;
                args(&[
                    "inetutils-inetd",
                    "-d",
                    &format!("--pidfile={}", dir("run/inetd.pid")),
                    &dir("echo/inetd.conf"),
                ])
            }
            Peer::Dns => {
                self.write(
                    "dns/dnsmasq.conf",
                    &format!(
                        "port=53\nlisten-address=127.0.0.1,{addr}\nbind-interfaces\n\
                         no-resolv\nno-hosts\nlocal=/pp.test/\naddress=/{DNS_NAME}/{addr}\n\
                         log-queries\nlog-facility=-\npid-file=\nuser=nobody\n"
                    ),
                )?;
                args(&[
                    "dnsmasq",
                    "-k",
                    &format!("--conf-file={}", dir("dns/dnsmasq.conf")),
                ])
            }
            Peer::Dhcp => {
                let net = Ipv4Addr::from(u32::from(addr) & 0xffff_ff00).octets();
                let range = |a: u8, b: u8| {
                    format!(
                        "{}.{}.{}.{a},{}.{}.{}.{b}",
                        net[0], net[1], net[2], net[0], net[1], net[2]
                    )
                };
                self.write(
                    "dhcp/dnsmasq.conf",
                    &format!(
                        "port=0\ninterface={ifname}\nbind-dynamic\n\
                         dhcp-range={},255.255.255.0,1h\n\
                         dhcp-authoritative\ndhcp-leasefile={}\nlog-dhcp\nlog-facility=-\n\
                         pid-file=\nuser=nobody\n",
                        range(100, 200),
                        dir("dhcp/leases")
                    ),
                )?;
                args(&[
                    "dnsmasq",
                    "-k",
                    &format!("--conf-file={}", dir("dhcp/dnsmasq.conf")),
                ])
            }
            Peer::Tftp => {
                self.write(&format!("tftp/{TFTP_FILE}"), TFTP_CONTENT)?;
                args(&[
                    "in.tftpd",
                    "-L",
                    "-v",
                    "-4",
                    "-a",
                    "0.0.0.0:69",
                    "-s",
                    "-u",
                    "nobody",
                    &dir("tftp"),
                ])
            }
            Peer::Rpcbind => {
                let state = self.mkdir("run/rpcbind")?;
                chown(&state, "_rpc")?;
                args(&["rpcbind", "-f"])
            }
            Peer::Ntp => {
                self.mkdir("run/chrony")?;
                self.write(
                    "ntp/chrony.conf",
                    &format!(
                        "port 123\nlocal stratum 8\nallow all\ncmdport 0\nbindcmdaddress /\n\
                         pidfile {}\n",
                        dir("run/chrony/chronyd.pid")
                    ),
                )?;
                args(&[
                    "chronyd",
                    "-d",
                    "-x",
                    "-u",
                    "_chrony",
                    "-f",
                    &dir("ntp/chrony.conf"),
                ])
            }
            Peer::NetbiosNs => {
                for sub in [
                    "lock", "state", "cache", "private", "pid", "ncalrpc", "nmbd", "log",
                ] {
                    self.mkdir(&format!("nbns/{sub}"))?;
                }
                let d = dir("nbns");
                self.write(
                    "nbns/smb.conf",
                    &format!(
                        "[global]\n\
                         workgroup = {NETBIOS_WORKGROUP}\n\
                         netbios name = {NETBIOS_NAME}\n\
                         interfaces = lo {addr}/24\n\
                         bind interfaces only = no\n\
                         wins support = yes\n\
                         lock directory = {d}/lock\n\
                         state directory = {d}/state\n\
                         cache directory = {d}/cache\n\
                         private dir = {d}/private\n\
                         pid directory = {d}/pid\n\
                         ncalrpc dir = {d}/ncalrpc\n\
                         nmbd:socket dir = {d}/nmbd\n\
                         log file = {d}/log/log.%m\n"
                    ),
                )?;
                args(&[
                    "nmbd",
                    "-F",
                    "--no-process-group",
                    "--debug-stdout",
                    "-d",
                    "1",
                    "-s",
                    &dir("nbns/smb.conf"),
                    "-l",
                    &dir("nbns/log"),
                ])
            }
            Peer::Snmp => {
                self.write(
                    "snmp/snmpd.conf",
                    &format!(
                        "agentAddress udp:127.0.0.1:161,udp:{addr}:161\n\
                         rocommunity {SNMP_COMMUNITY} default\n\
                         sysName {DNS_NAME}\nsysDescr portprobe-peers net-snmp\n\
                         sysLocation portprobe lab\nsysContact nobody@pp.test\nmaster no\n"
                    ),
                )?;
                args(&[
                    "snmpd",
                    "-f",
                    "-Lo",
                    "-C",
                    "-c",
                    &dir("snmp/snmpd.conf"),
                    "-p",
                    &dir("run/snmpd.pid"),
                    "-I",
                    "-smux,mteTrigger,mteTriggerConf",
                ])
            }
            Peer::Ike => {
                self.write(
                    "ike/strongswan.conf",
                    &format!(
                        "charon {{\n\
                         \x20 port = 500\n  port_nat_t = 4500\n  install_routes = no\n\
                         \x20 load_modular = no\n\
                         \x20 load = random nonce aes sha1 sha2 md5 hmac gmp kdf pem pkcs1 \
                         x509 revocation constraints pubkey kernel-netlink socket-default vici\n\
                         \x20 filelog {{\n    stderr {{\n      default = 1\n      time_format = %T\n    }}\n  }}\n\
                         \x20 plugins {{\n    vici {{\n      socket = unix://{}\n    }}\n  }}\n\
                         }}\n",
                        dir("ike/charon.vici")
                    ),
                )?;
                self.write(
                    "ike/swanctl.conf",
                    &format!(
                        "connections {{\n  pp-any {{\n    version = 0\n\
                         \x20   local_addrs = %any\n    remote_addrs = %any\n\
                         \x20   proposals = aes128-sha256-modp2048, aes256-sha256-modp2048, \
                         aes128-sha1-modp2048, aes128-sha1-modp1024, default\n\
                         \x20   local {{\n      auth = psk\n    }}\n\
                         \x20   remote {{\n      auth = psk\n    }}\n  }}\n}}\n\
                         secrets {{\n  ike-any {{\n    secret = \"{IKE_PSK}\"\n  }}\n}}\n"
                    ),
                )?;
                args(&[Peer::Ike.program()])
            }
            Peer::Ipmi => {
                self.mkdir("ipmi/state")?;
                self.write(
                    "ipmi/lan.conf",
                    &format!(
                        "name \"ppbmc\"\n\
                         set_working_mc 0x20\n\
                         startlan 1\n\
                         \x20 addr 0.0.0.0 623\n\
                         \x20 priv_limit admin\n\
                         \x20 allowed_auths_callback none md2 md5 straight\n\
                         \x20 allowed_auths_user none md2 md5 straight\n\
                         \x20 allowed_auths_operator none md2 md5 straight\n\
                         \x20 allowed_auths_admin none md2 md5 straight\n\
                         \x20 guid a123456789abcdefa123456789abcdef\n\
                         endlan\n\
                         user 1 true \"\" \"test\" user 10 none md2 md5 straight\n\
                         user 2 true \"{IPMI_USER}\" \"{IPMI_PASSWORD}\" admin 10 none md2 md5 straight\n"
                    ),
                )?;
                self.write(
                    "ipmi/ppbmc.emu",
                    "mc_setbmc 0x20\n\
                     mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
                     sel_enable 0x20 1000 0x0a\n\
                     mc_enable 0x20\n",
                )?;
                args(&[
                    "ipmi_sim",
                    "-n",
                    "-c",
                    &dir("ipmi/lan.conf"),
                    "-f",
                    &dir("ipmi/ppbmc.emu"),
                    "-s",
                    &dir("ipmi/state"),
                ])
            }
            Peer::L2tp => {
                self.write("l2tp/options", "noauth\n")?;
                self.write("l2tp/l2tp-secrets", "")?;
                self.write(
                    "l2tp/xl2tpd.conf",
                    &format!(
                        "[global]\nport = 1701\naccess control = no\n\n\
                         [lns default]\nip range = 198.18.10.10-198.18.10.20\n\
                         local ip = 198.18.10.1\nrequire authentication = no\n\
                         pppoptfile = {}\n",
                        dir("l2tp/options")
                    ),
                )?;
                args(&[
                    "xl2tpd",
                    "-D",
                    "-c",
                    &dir("l2tp/xl2tpd.conf"),
                    "-s",
                    &dir("l2tp/l2tp-secrets"),
                    "-p",
                    &dir("run/xl2tpd.pid"),
                    "-C",
                    &dir("run/l2tp-control"),
                ])
            }
            Peer::Nfs => {
                let export = self.mkdir("nfs/export")?;
                fs::write(export.join("README"), "portprobe peers lab export\n")?;
                self.mkdir("nfs/recovery")?;
                self.write(
                    "nfs/ganesha.conf",
                    &format!(
                        "NFS_CORE_PARAM {{\n  NFS_Port = 2049;\n  MNT_Port = 20048;\n\
                         \x20 Enable_NLM = false;\n  Enable_RQUOTA = false;\n\
                         \x20 Enable_UDP = true;\n  Protocols = 3, 4;\n}}\n\
                         NFS_KRB5 {{\n  Active_krb5 = false;\n}}\n\
                         NFSV4 {{\n  Graceless = true;\n  RecoveryBackend = fs;\n\
                         \x20 RecoveryRoot = {};\n}}\n\
                         EXPORT {{\n  Export_Id = 1;\n  Path = {};\n  Pseudo = /export;\n\
                         \x20 Access_Type = RO;\n  Transports = UDP, TCP;\n\
                         \x20 FSAL {{\n    Name = VFS;\n  }}\n}}\n",
                        dir("nfs/recovery"),
                        dir("nfs/export")
                    ),
                )?;
                args(&[
                    "ganesha.nfsd",
                    "-F",
                    "-L",
                    "/dev/stdout",
                    "-f",
                    &dir("nfs/ganesha.conf"),
                    "-p",
                    &dir("run/ganesha.pid"),
                    "-N",
                    "NIV_EVENT",
                ])
            }
            Peer::Sip => {
                self.mkdir("run/kamailio")?;
                self.write(
                    "sip/kamailio.cfg",
                    "#!KAMAILIO\n\
                     debug=2\nlog_stderror=yes\nchildren=2\n\
                     listen=udp:0.0.0.0:5060\n\
                     server_header=\"Server: kamailio (portprobe peers lab)\"\n\
                     user_agent_header=\"User-Agent: kamailio (portprobe peers lab)\"\n\
                     mpath=\"/usr/lib/x86_64-linux-gnu/kamailio/modules/\"\n\
                     loadmodule \"sl.so\"\nloadmodule \"textops.so\"\nloadmodule \"maxfwd.so\"\n\
                     request_route {\n\
                     \x20 if (!mf_process_maxfwd_header(\"10\")) {\n\
                     \x20   sl_send_reply(\"483\", \"Too Many Hops\");\n    exit;\n  }\n\
                     \x20 if (is_method(\"OPTIONS\")) {\n\
                     \x20   append_to_reply(\"Allow: OPTIONS\\r\\n\");\n\
                     \x20   sl_send_reply(\"200\", \"OK\");\n    exit;\n  }\n\
                     \x20 if (is_method(\"ACK\")) {\n    exit;\n  }\n\
                     \x20 sl_send_reply(\"404\", \"Not Found\");\n}\n",
                )?;
                args(&[
                    "kamailio",
                    "-DD",
                    "-E",
                    "-f",
                    &dir("sip/kamailio.cfg"),
                    "-P",
                    &dir("run/kamailio/kamailio.pid"),
                    "-Y",
                    &dir("run/kamailio"),
                    "-m",
                    "32",
                    "-M",
                    "4",
                ])
            }
            Peer::Mdns => {
                self.mkdir("mdns/services")?;
                for (file, kind, port, txt) in [
                    ("device-info", "_device-info._tcp", 0, "model=Xserve"),
                    ("ssh", "_ssh._tcp", 22, ""),
                    ("airplay", "_airplay._tcp", 7000, "model=AppleTV5,3"),
                ] {
                    let txt = if txt.is_empty() {
                        String::new()
                    } else {
                        format!("<txt-record>{txt}</txt-record>")
                    };
                    self.write(
                        &format!("mdns/services/{file}.service"),
                        &format!(
                            "<?xml version=\"1.0\" standalone='no'?>\n\
                             <!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n\
                             <service-group><name replace-wildcards=\"yes\">%h</name>\
                             <service><type>{kind}</type><port>{port}</port>{txt}</service>\
                             </service-group>\n"
                        ),
                    )?;
                }
                self.write(
                    "mdns/avahi-daemon.conf",
                    &format!(
                        "[server]\nhost-name={MDNS_HOST}\ndomain-name=local\nuse-ipv4=yes\n\
                         use-ipv6=yes\nallow-interfaces={ifname}\nenable-dbus=no\n\
                         ratelimit-interval-usec=0\n\n\
                         [wide-area]\nenable-wide-area=no\n\n\
                         [publish]\npublish-addresses=yes\npublish-hinfo=yes\n\
                         publish-workstation=yes\npublish-domain=no\n\
                         publish-aaaa-on-ipv4=yes\npublish-a-on-ipv6=yes\n\n\
                         [reflector]\nenable-reflector=no\n"
                    ),
                )?;
                args(&[
                    "avahi-daemon",
                    "--no-drop-root",
                    "--no-chroot",
                    "--no-rlimits",
                    "--no-proc-title",
                    "-f",
                    &dir("mdns/avahi-daemon.conf"),
                ])
            }
            Peer::Syslog => {
                self.mkdir("syslog/work")?;
                self.write(
                    "syslog/rsyslog.conf",
                    &format!(
                        "global(workDirectory=\"{}\")\n\
                         module(load=\"imudp\")\n\
                         input(type=\"imudp\" port=\"514\")\n\
                         *.* action(type=\"omfile\" file=\"{}\")\n",
                        dir("syslog/work"),
                        dir("log/syslog-received.log")
                    ),
                )?;
                args(&[
                    "rsyslogd",
                    "-n",
                    "-f",
                    &dir("syslog/rsyslog.conf"),
                    "-i",
                    &dir("run/rsyslogd.pid"),
                ])
            }
        })
    }

    fn stop(&mut self) {
        let mounts: Vec<NsId> = self.daemons.iter().filter_map(|d| d.mnt).collect();
        for d in &mut self.daemons {
            d.group.kill();
        }
        // Anything that left its process group is still in its daemon's
        // private mount namespace.
        let stragglers: Vec<i32> = mounts.iter().flat_map(|&m| pids_in("mnt", m)).collect();
        kill_all(&stragglers);
        self.daemons.clear();
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The interface in `ns` that carries `addr`.
fn interface_with(ns: &str, addr: Ipv4Addr) -> io::Result<String> {
    let out = super::run(Command::new("ip").args(["-n", ns, "-o", "-4", "addr", "show"]))?;
    let needle = format!(" {addr}/");
    out.lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .ok_or_else(|| io::Error::other(format!("no interface in {ns} has {addr}")))
}

fn chown(path: &Path, user: &str) -> io::Result<()> {
    let user = nix::unistd::User::from_name(user)
        .map_err(io::Error::from)?
        .ok_or_else(|| io::Error::other(format!("no user {user}")))?;
    nix::unistd::chown(path, Some(user.uid), Some(user.gid)).map_err(io::Error::from)
}
