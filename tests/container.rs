//! The container image, built and run for real with podman: `docker/Dockerfile`
//! passes hadolint, builds unchanged, runs as a numeric user without
//! capabilities, and probes the lab from inside a container that joins the
//! lab's client namespace, as a command and as the exporter.
//! `docker/prometheus.yml` passes promtool. Under CI, `docker/compose.yaml`
//! is brought up with podman-compose inside a lab namespace, its Prometheus
//! (a stand-in for `prom/prometheus` made from Debian's package) scrapes
//! the exporter, and it is taken down again.
//!
//! No registry is reachable, so the images the Dockerfile starts `FROM` are
//! made here when podman does not have them: a Debian 12 root made by
//! debootstrap, and from it a builder with Debian's Rust. Building needs root
//! and podman; without them each test prints one line saying it was skipped,
//! and under CI=true it fails. The image is built once for every test here.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const IMAGE: &str = "localhost/portprobe:test";
/// The names `docker/Dockerfile` starts from, as podman spells them.
const DEBIAN: &str = "docker.io/library/debian:bookworm-slim";
const RUST: &str = "docker.io/library/rust:1-slim-bookworm";
/// The builder: Debian's newest Rust (bookworm-security carries the
/// `rustc-web` updates; plain `cargo` is 1.63, too old for edition 2024).
/// `cargo-web` installs its binary as `cargo`.
const BUILDER: &str = "FROM docker.io/library/debian:bookworm-slim
RUN echo 'deb http://deb.debian.org/debian-security bookworm-security main' \
        > /etc/apt/sources.list.d/security.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends cargo-web ca-certificates \
    && rm -rf /var/lib/apt/lists/*
";
/// cargo in the build reaches crates.io with the host's certificates,
/// mounted for the build only.
const CERTS: &str = "/etc/ssl/certs/ca-certificates.crt";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The hadolint to run: `$HADOLINT` (`.ci/run` installs one from PyPI), else
/// `hadolint` on `PATH`.
fn hadolint() -> String {
    std::env::var("HADOLINT").unwrap_or_else(|_| "hadolint".into())
}

/// podman with the project's settings: runc, limits root can set, cgroupfs.
fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", root().join("docker/containers.conf"));
    cmd
}

/// Runs `cmd` and returns its output, or an error with the command, its
/// status and the end of what it printed.
fn output(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(out);
    }
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    Err(format!(
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        tail(&out.stdout),
        tail(&out.stderr)
    ))
}

fn stdout(cmd: &mut Command) -> Result<String, String> {
    output(cmd).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn image_exists(name: &str) -> bool {
    podman()
        .args(["image", "exists", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The image for test `name`, built on first use; `None` (after one
/// `skipped` line) without root, podman or runc, or without debootstrap
/// when the Debian image must be made. Panics under CI instead, and when
/// the build fails.
fn image(name: &str) -> Option<&'static str> {
    if !support::require_lab(name) || !support::require_programs(name, &["podman", "runc"]) {
        return None;
    }
    if !image_exists(DEBIAN) && !support::require_programs(name, &["debootstrap"]) {
        return None;
    }
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    match BUILT.get_or_init(build) {
        Ok(()) => Some(IMAGE),
        Err(e) => panic!("{name}: {e}"),
    }
}

fn build() -> Result<(), String> {
    if !image_exists(DEBIAN) {
        make_debian()?;
    }
    if !image_exists(RUST) {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("Containerfile"), BUILDER).map_err(|e| e.to_string())?;
        // Builds use the host's network, so apt reaches Debian's mirror and
        // cargo crates.io: podman's default bridge would turn on the host's
        // forwarding and add firewall chains.
        output(
            podman()
                .args(["build", "--network", "host", "-t", RUST])
                .arg(dir.path()),
        )?;
    }
    check_builder()?;
    output(
        podman()
            .args(["build", "--network", "host", "-v"])
            .arg(format!("{CERTS}:{CERTS}:ro"))
            .args(["-f", "docker/Dockerfile", "-t", IMAGE, "."])
            .current_dir(root()),
    )?;
    Ok(())
}

/// A minimal Debian 12 made by debootstrap, imported under the name of
/// Docker's `debian:bookworm-slim`.
fn make_debian() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = dir.path().join("rootfs");
    output(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg("http://deb.debian.org/debian"),
    )?;
    let mounted = mounts_under(&rootfs);
    if !mounted.is_empty() {
        // Removing the root would reach into what is still mounted there.
        let kept = dir.keep();
        return Err(format!(
            "debootstrap left {mounted:?} mounted; kept {}",
            kept.display()
        ));
    }
    for cache in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in std::fs::read_dir(rootfs.join(cache)).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_file() {
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    let tarball = dir.path().join("rootfs.tar");
    output(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    output(podman().arg("import").arg(&tarball).arg(DEBIAN))?;
    Ok(())
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// `cargo` resolves in the builder, and its `rustc` is at least the
/// crate's `rust-version`.
fn check_builder() -> Result<(), String> {
    let run = |program: &str| {
        stdout(podman().args([
            "run",
            "--rm",
            "--network",
            "none",
            RUST,
            program,
            "--version",
        ]))
    };
    run("cargo")?;
    let rustc = run("rustc")?;
    let have = rustc
        .split_whitespace()
        .nth(1)
        .map(version)
        .ok_or_else(|| format!("unexpected `rustc --version`: {rustc}"))?;
    let need = include_str!("../Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| version(v.trim_matches('"')))
        .expect("Cargo.toml states rust-version");
    if have < need {
        return Err(format!("the builder has {rustc}, the crate needs {need:?}"));
    }
    Ok(())
}

/// "1.88.0" as (1, 88, 0); a missing patch is 0.
fn version(v: &str) -> (u32, u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn dockerfile_passes_hadolint() {
    let name = "dockerfile_passes_hadolint";
    let hadolint = hadolint();
    if !support::require_programs(name, &[&hadolint]) {
        return;
    }
    let out = Command::new(&hadolint)
        .args(["--failure-threshold", "warning"])
        .arg(root().join("docker/Dockerfile"))
        .output()
        .expect("run hadolint");
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_config_passes_promtool() {
    let name = "prometheus_config_passes_promtool";
    if !support::require_programs(name, &["promtool"]) {
        return;
    }
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(root().join("docker/prometheus.yml"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_runs_as_a_numeric_user_without_capabilities() {
    let Some(image) = image("image_runs_as_a_numeric_user_without_capabilities") else {
        return;
    };
    let config = |field: &str| {
        stdout(podman().args(["image", "inspect", "--format", field, image])).unwrap()
    };
    assert_eq!(config("{{.Config.User}}"), "10001:10001");
    assert_eq!(config("{{json .Config.Entrypoint}}"), r#"["portprobe"]"#);
    assert!(config("{{json .Config.ExposedPorts}}").contains("9199/tcp"));

    let run = |entrypoint: &str, args: &[&str]| {
        stdout(
            podman()
                .args([
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--entrypoint",
                    entrypoint,
                    image,
                ])
                .args(args),
        )
        .unwrap()
    };
    assert_eq!(run("id", &["-u"]), "10001");
    assert_eq!(run("id", &["-g"]), "10001");
    let status = run("cat", &["/proc/self/status"]);
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{set}:")))
            .unwrap_or_else(|| panic!("no {set} in:\n{status}"));
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}

#[test]
fn image_prints_its_version() {
    let Some(image) = image("image_prints_its_version") else {
        return;
    };
    let version =
        stdout(podman().args(["run", "--rm", "--network", "none", image, "--version"])).unwrap();
    assert_eq!(version, concat!("portprobe ", env!("CARGO_PKG_VERSION")));
}

/// The container joins the lab's client namespace: the probe crosses the
/// lab's router to its server and nowhere else.
#[test]
fn image_probes_the_lab_from_the_client_namespace() {
    let name = "image_probes_the_lab_from_the_client_namespace";
    let Some(image) = image(name) else {
        return;
    };
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let _listener = lab.tcp_listeners(&[22], false).expect("listener");
    lab.nft(&["tcp dport 5900 drop"]).expect("nft rule");
    let network = format!("ns:{}", support::netns::ns_path(lab.client_ns()).display());
    let out = podman()
        .args(["run", "--rm", "--network", &network, image])
        .arg(lab.server_v4().to_string())
        .args(["--ports", "22,5900", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run podman");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let states: BTreeMap<u64, &str> = doc["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["port"].as_u64().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([(22, "open"), (5900, "filtered")]),
        "{doc}"
    );
    assert_eq!(doc["status"], "CRITICAL", "{doc}");
    assert_eq!(out.status.code(), Some(2), "{doc}");
}

/// A container started with `podman run -d`, stopped and removed on drop.
struct Running(String);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = podman().args(["rm", "-f", "-t", "5", &self.0]).output();
    }
}

/// The exporter's image command: `serve` in a container that joins the
/// lab's client namespace, allowed to probe the server's network only.
#[test]
fn image_serves_the_exporter_into_the_lab() {
    let name = "image_serves_the_exporter_into_the_lab";
    let Some(image) = image(name) else {
        return;
    };
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let _listener = lab.tcp_listeners(&[22], false).expect("listener");
    lab.nft(&["tcp dport 5900 drop"]).expect("nft rule");
    let network = format!("ns:{}", support::netns::ns_path(lab.client_ns()).display());
    let id = stdout(
        podman()
            .args(["run", "-d", "--network", &network, image])
            .args([
                "serve",
                "--listen",
                "127.0.0.1:9199",
                "--allow",
                "198.18.1.0/24",
            ]),
    )
    .expect("start the exporter");
    let container = Running(id);
    let at: std::net::SocketAddr = "127.0.0.1:9199".parse().unwrap();
    let get = |path: &str| -> Option<(u16, String)> {
        let path = path.to_string();
        lab.run_in(support::lab::Ns::Client, move || {
            support::http::get(at, &path, "")
        })
        .expect("run in the client namespace")
        .ok()
        .map(|r| (r.code, r.body))
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while get("/metrics").is_none() {
        assert!(Instant::now() < deadline, "the exporter never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = get("/probe?target=198.18.1.2&ports=22,5900").expect("a probe");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.lines().any(|l| l.starts_with("portprobe_port_info{")
            && l.contains("port=\"5900\"")
            && l.contains("reason=\"no-response\"")
            && l.contains("state=\"filtered\"")),
        "{body}"
    );
    assert!(
        body.contains("\nprobe_success{target=\"198.18.1.2\"} 0\n"),
        "{body}"
    );
    let (code, body) = get("/probe?target=198.18.0.1&ports=22").expect("a refusal");
    assert_eq!(code, 403, "{body}");
    // SIGTERM ends it at once: podman stop does not have to kill it.
    let started = Instant::now();
    stdout(podman().args(["stop", "-t", "10", &container.0])).expect("stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        started.elapsed()
    );
}

/// The name `docker/compose.yaml` runs Prometheus from, as podman spells it.
const PROMETHEUS: &str = "docker.io/prom/prometheus:latest";
/// A stand-in for the `prom/prometheus` image, which no registry here
/// serves: Debian's prometheus package, laid out as that image is (the
/// same entry point and arguments, configuration in /etc/prometheus, data
/// in /prometheus, running as nobody). The package must not start its
/// daemon during the build.
const PROMETHEUS_STANDIN: &str = r#"FROM docker.io/library/debian:bookworm-slim
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
    && mkdir /prometheus \
    && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
"#;
/// The name `docker/compose.yaml` gives the exporter's image.
const COMPOSE_IMAGE: &str = "localhost/portprobe:latest";

/// The podman-compose to run: `$PODMAN_COMPOSE` (`.ci/run` installs one
/// from PyPI), else `podman-compose` on `PATH`.
fn podman_compose() -> String {
    std::env::var("PODMAN_COMPOSE").unwrap_or_else(|_| "podman-compose".into())
}

/// A compose project, taken down on drop.
struct Project(Vec<String>);

impl Project {
    fn compose(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(podman_compose());
        cmd.env("CONTAINERS_CONF", root().join("docker/containers.conf"))
            .args(&self.0)
            .args(args)
            .current_dir(root());
        cmd
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-t", "5"]).output();
    }
}

/// `docker/compose.yaml` as shipped, brought up with podman-compose inside
/// the lab's client namespace: an override file puts both services there
/// (podman's bridge would reach the host's network) and drops the ports
/// published to the host's loopback, which a namespace of its own has no
/// use for; the name `portprobe` resolves to that namespace's loopback.
/// The lab's server holds the documentation addresses that
/// `docker/prometheus.yml` probes, so its scrapes stay in the lab.
/// Under CI only: it starts a real Prometheus for a minute.
#[test]
fn compose_project_comes_up_and_its_prometheus_scrapes_the_exporter() {
    let name = "compose_project_comes_up_and_its_prometheus_scrapes_the_exporter";
    if !support::in_ci() {
        eprintln!("skipped {name}: runs under CI=true only");
        return;
    }
    let compose = podman_compose();
    let Some(image) = image(name) else {
        return;
    };
    if !support::require_programs(name, &[&compose]) {
        return;
    }
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    output(podman().args(["tag", image, COMPOSE_IMAGE])).unwrap();
    if !image_exists(PROMETHEUS) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Containerfile"), PROMETHEUS_STANDIN).unwrap();
        output(
            podman()
                .args(["build", "--network", "host", "-t", PROMETHEUS])
                .arg(dir.path()),
        )
        .unwrap();
    }
    // The documentation targets of docker/prometheus.yml, on the server.
    let ip = |ns: &str, args: &[&str]| {
        support::run(Command::new("ip").args(["-n", ns]).args(args)).unwrap();
    };
    for target in ["192.0.2.10", "192.0.2.11", "192.0.2.20"] {
        ip(
            lab.server_ns(),
            &["addr", "add", &format!("{target}/32"), "dev", "to-router"],
        );
    }
    ip(
        lab.router_ns(),
        &["route", "add", "192.0.2.0/24", "via", "198.18.1.2"],
    );
    lab.nft(&["tcp dport 5900 drop"]).unwrap();
    let _listeners = lab.tcp_listeners(&[3283, 5988], false).unwrap();

    let network = support::netns::ns_path(lab.client_ns());
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("lab.yaml");
    std::fs::write(
        &overrides,
        format!(
            "services:\n\
             \x20 portprobe:\n\
             \x20   network_mode: \"ns:{net}\"\n\
             \x20   ports: !reset []\n\
             \x20 prometheus:\n\
             \x20   network_mode: \"ns:{net}\"\n\
             \x20   ports: !reset []\n\
             \x20   extra_hosts: [\"portprobe:127.0.0.1\"]\n",
            net = network.display()
        ),
    )
    .unwrap();
    let project = Project(vec![
        "--in-pod".into(),
        "false".into(),
        "-p".into(),
        lab.prefix().to_string(),
        "-f".into(),
        "docker/compose.yaml".into(),
        "-f".into(),
        overrides.display().to_string(),
    ]);
    let started = Instant::now();
    output(&mut project.compose(&["up", "-d", "--no-build"])).unwrap();

    let get = |path: &str, at: &str| -> Option<(u16, String)> {
        let (path, at) = (path.to_string(), at.parse().unwrap());
        lab.run_in(support::lab::Ns::Client, move || {
            support::http::get_within(at, &path, "", Duration::from_secs(20))
        })
        .expect("run in the client namespace")
        .ok()
        .map(|r| (r.code, r.body))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get("/metrics", "127.0.0.1:9199").is_none() {
        assert!(Instant::now() < deadline, "the exporter never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A probe through the project's exporter, as its Prometheus asks.
    let (code, body) = get(
        "/probe?product=Apple+Remote+Desktop&target=192.0.2.10",
        "127.0.0.1:9199",
    )
    .expect("a probe");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.lines().any(|l| l.starts_with("portprobe_port_info{")
            && l.contains("port=\"5900\"")
            && l.contains("state=\"filtered\"")),
        "{body}"
    );
    assert!(
        body.contains("\nprobe_success{target=\"192.0.2.10\"} 0\n"),
        "{body}"
    );
    // Its Prometheus scrapes both jobs, at prometheus.yml's minute: the
    // first scrape of a target comes within an interval of the start.
    let query = |q: &str| -> Vec<Value> {
        get(
            &format!("/api/v1/query?query={}", support::http::form_encode(q)),
            "127.0.0.1:9090",
        )
        .and_then(|(code, body)| (code == 200).then_some(body))
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .and_then(|doc| doc["data"]["result"].as_array().cloned())
        .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(100);
    let (exporter, probed) = loop {
        let exporter = query("up{job=\"portprobe-exporter\"}");
        let probed = query("up{job=\"portprobe-ard\",instance=\"192.0.2.10\"}");
        if !exporter.is_empty() && !probed.is_empty() {
            break (exporter, probed);
        }
        assert!(
            Instant::now() < deadline,
            "the project's Prometheus has not scraped the exporter: {:?}",
            query("up")
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(exporter[0]["value"][1], "1", "{exporter:?}");
    assert_eq!(exporter[0]["metric"]["instance"], "portprobe:9199");
    assert_eq!(probed[0]["value"][1], "1", "{probed:?}");
    let blocked = query("portprobe_port_blocked{instance=\"192.0.2.10\",port=\"5900\"}");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0]["value"][1], "1", "{blocked:?}");
    let scraped = started.elapsed();

    let down = Instant::now();
    output(&mut project.compose(&["down", "-t", "10"])).unwrap();
    let left = stdout(podman().args([
        "ps",
        "-a",
        "--filter",
        &format!("label=io.podman.compose.project={}", lab.prefix()),
        "--format",
        "{{.Names}}",
    ]))
    .unwrap();
    assert_eq!(left, "", "containers left after down");
    eprintln!(
        "compose project up and scraped in {scraped:.2?}, down in {:.2?}",
        down.elapsed()
    );
}
