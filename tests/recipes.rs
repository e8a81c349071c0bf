//! The recipes for scheduled runs in `contrib/`, run as written: the systemd
//! unit's `ExecStart=` and the cron line against loopback, the Nagios
//! command with its example service's argument, the Prometheus alert rules
//! through `promtool check rules` and their unit tests through `promtool
//! test rules`, the many-sites configuration (`prometheus/sites/`) through
//! `promtool check config` and its rules through `promtool test rules`,
//! the units through `systemd-analyze`, the Nagios objects through Nagios'
//! own pre-flight check.
//!
//! Of each command line only three things are replaced: the example target
//! (192.0.2.10) by 127.0.0.1, the installed binary by the one under test,
//! and the textfile by one in a temporary directory. Packets go only to
//! loopback.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");
/// Where the recipes expect portprobe (`cargo install --root /usr/local`).
const INSTALLED: &str = "/usr/local/bin/portprobe";
/// The documentation address the recipes probe.
const EXAMPLE_TARGET: &str = "192.0.2.10";
const LOOPBACK: &str = "127.0.0.1";
/// The file name the alert rules' staleness check looks for.
const TEXTFILE_NAME: &str = "portprobe.prom";
const UNIT: &str = "systemd/portprobe-textfile.service";
const TIMER: &str = "systemd/portprobe-textfile.timer";

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(contrib(path)).unwrap_or_else(|e| panic!("contrib/{path}: {e}"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Splits a command line into words as both systemd's `ExecStart=` and
/// `sh` do for the plain subset the recipes keep to: words separated by
/// spaces, double quotes grouping words, nothing expanded or escaped. A
/// line with anything else (`$`, `%`, backslashes, single quotes, shell
/// operators) is refused, so that this split is exactly theirs.
fn words(line: &str) -> Vec<String> {
    let special = [
        '$', '%', '\\', '\'', '`', ';', '|', '&', '<', '>', '(', ')', '*', '?', '~', '#',
    ];
    assert!(
        !line.contains(special),
        "{line:?}: keep to plain words and double quotes"
    );
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut in_word, mut quoted) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "{line:?}: unbalanced double quote");
    if in_word {
        out.push(word);
    }
    out
}

/// Quotes `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The values of `key` in `[section]` of a systemd unit file, in order.
fn unit_values(unit: &str, section: &str, key: &str) -> Vec<String> {
    let mut current = "";
    let mut values = Vec::new();
    for line in unit.lines().map(str::trim) {
        assert!(!line.ends_with('\\'), "{line:?}: no continuation lines");
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name;
        } else if let Some((k, v)) = line.split_once('=')
            && current == section
            && k.trim() == key
        {
            values.push(v.trim().to_owned());
        }
    }
    values
}

/// The one value of `key` in `[section]`.
fn unit_value(unit: &str, section: &str, key: &str) -> String {
    match unit_values(unit, section, key).as_slice() {
        [v] => v.clone(),
        other => panic!("[{section}] {key}= should be set once, is {other:?}"),
    }
}

/// The value after `--output` (or `-o`) in a command's words.
fn output_of(argv: &[String]) -> &str {
    let at = argv
        .iter()
        .position(|w| w == "--output" || w == "-o")
        .expect("the command writes a file with --output");
    argv.get(at + 1).expect("--output has a value")
}

/// Checks a command's words before a run: the installed binary, the
/// example target once, `--format prometheus`, and a textfile named as the
/// alert rules expect.
fn check_textfile_command(argv: &[String]) {
    assert_eq!(argv[0], INSTALLED, "{argv:?}");
    assert_eq!(
        argv.iter().filter(|w| *w == EXAMPLE_TARGET).count(),
        1,
        "{argv:?}: the example target {EXAMPLE_TARGET} once"
    );
    assert!(
        argv.windows(2)
            .any(|w| w[0] == "--format" && w[1] == "prometheus"),
        "{argv:?}"
    );
    let output = Path::new(output_of(argv));
    assert!(output.is_absolute(), "{output:?}");
    assert_eq!(
        output.file_name().and_then(|n| n.to_str()),
        Some(TEXTFILE_NAME),
        "the alert rules look for {TEXTFILE_NAME}"
    );
    assert!(
        read("prometheus/portprobe-rules.yml").contains(r#"portprobe\\.prom""#),
        "the staleness rule matches {TEXTFILE_NAME}"
    );
}

/// The value of the one sample of `metric` (the recipes probe one target).
fn sample(scrape: &prometheus_parse::Scrape, metric: &str) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .collect();
    match found.as_slice() {
        [s] => match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{metric}: {other:?}"),
        },
        other => panic!("one sample of {metric}, found {}", other.len()),
    }
}

/// Checks a run that wrote the textfile: the exit code is 0 or one the
/// unit counts as success, the file parses as the text exposition format
/// and has what the alert rules read, with the exit code as
/// `portprobe_status`; and `promtool check metrics` finds nothing to lint.
fn check_textfile_run(name: &str, out: &Output, file: &Path, success: &BTreeSet<i32>) {
    let code = out.status.code().expect("portprobe exited");
    assert!(
        code == 0 || success.contains(&code),
        "{name}: exit {code} would fail the unit: {}",
        text(&out.stderr)
    );
    let exposition = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let scrape = prometheus_parse::Scrape::parse(exposition.lines().map(|l| Ok(l.to_owned())))
        .expect("valid text exposition format");
    assert_eq!(sample(&scrape, "portprobe_status"), f64::from(code));
    assert!(sample(&scrape, "portprobe_probe_duration_seconds") >= 0.0);
    for s in &scrape.samples {
        assert_eq!(s.labels.get("target"), Some(LOOPBACK), "{s:?}");
    }
    let blocked: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "portprobe_port_blocked")
        .collect();
    assert!(!blocked.is_empty(), "{exposition}");
    let identity = [
        "target", "address", "protocol", "port", "service", "product",
    ];
    for s in blocked {
        for label in identity {
            assert!(s.labels.get(label).is_some(), "{s:?} lacks {label}");
        }
        // The alert's description reads what was found from the port's
        // info series, matched on these labels.
        let info = scrape.samples.iter().find(|i| {
            i.metric == "portprobe_port_info"
                && identity.iter().all(|l| i.labels.get(l) == s.labels.get(l))
        });
        let info = info.unwrap_or_else(|| panic!("no portprobe_port_info for {s:?}"));
        assert!(info.labels.get("state").is_some() && info.labels.get("reason").is_some());
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "portprobe_probe_success"
                && s.labels.get("target") == Some(LOOPBACK)),
        "{exposition}"
    );
    if support::require_programs(&format!("{name} (promtool check metrics)"), &["promtool"]) {
        let mut lint = Command::new("promtool");
        lint.args(["check", "metrics"])
            .stdin(std::fs::File::open(file).unwrap());
        let lint = lint.output().expect("promtool runs");
        assert!(
            lint.status.success(),
            "promtool check metrics: {}{}",
            text(&lint.stdout),
            text(&lint.stderr)
        );
    }
}

#[test]
fn alert_rules_load_and_pass_their_unit_tests() {
    let name = "alert_rules_load_and_pass_their_unit_tests";
    if !support::require_programs(name, &["promtool"]) {
        return;
    }
    for args in [
        ["check", "rules", "portprobe-rules.yml"],
        ["test", "rules", "portprobe-rules.test.yml"],
    ] {
        let out = run(Command::new("promtool")
            .args(args)
            .current_dir(contrib("prometheus")));
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// The placeholders of `prometheus/sites/agent.yml`, with the example
/// values its opening comment fills them with.
const AGENT_PLACEHOLDERS: [(&str, &str); 3] = [
    ("${SITE}", "a"),
    ("${EXPORTER}", "127.0.0.1:9199"),
    ("${CENTRAL}", "http://prometheus.example:9090"),
];

#[test]
fn site_configs_and_rules_pass_promtool() {
    let name = "site_configs_and_rules_pass_promtool";
    if !support::require_programs(name, &["promtool"]) {
        return;
    }
    // The agent's template, filled in as its comment says, beside the
    // targets file it reads.
    let template = read("prometheus/sites/agent.yml");
    let mut agent = template.clone();
    for (placeholder, example) in AGENT_PLACEHOLDERS {
        assert!(
            template.contains(&format!(
                "{}={example}",
                &placeholder[2..placeholder.len() - 1]
            )),
            "agent.yml's comment does not fill {placeholder} with {example}"
        );
        agent = agent.replace(placeholder, example);
    }
    assert!(
        !agent.contains("${"),
        "agent.yml has other placeholders: {agent}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent.yml"), &agent).unwrap();
    std::fs::copy(
        contrib("prometheus/sites/targets.json"),
        dir.path().join("targets.json"),
    )
    .unwrap();
    // Each target names what to probe in a label that relabelling turns
    // into a parameter and that is never stored.
    let targets: serde_json::Value =
        serde_json::from_str(&read("prometheus/sites/targets.json")).unwrap();
    for group in targets.as_array().unwrap() {
        let labels = group["labels"].as_object().unwrap();
        assert!(
            !labels.is_empty()
                && labels
                    .keys()
                    .all(|k| ["__tmp_product", "__tmp_ports"].contains(&k.as_str())),
            "{group}"
        );
    }
    let checks: [(&[&str], PathBuf); 4] = [
        (
            &["check", "config", "--agent", "agent.yml"],
            dir.path().to_path_buf(),
        ),
        (
            &["check", "config", "central.yml"],
            contrib("prometheus/sites"),
        ),
        (
            &["check", "rules", "portprobe-sites-rules.yml"],
            contrib("prometheus/sites"),
        ),
        (
            &["test", "rules", "portprobe-sites-rules.test.yml"],
            contrib("prometheus/sites"),
        ),
    ];
    for (args, cwd) in checks {
        let out = run(Command::new("promtool").args(args).current_dir(cwd));
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn systemd_unit_runs_as_written() {
    let unit = read(UNIT);
    let exec = unit_value(&unit, "Service", "ExecStart");
    assert_eq!(unit_value(&unit, "Service", "Type"), "oneshot");
    let argv = words(&exec);
    check_textfile_command(&argv);

    // 1 and 2 are results, written to the file; 3 (UNKNOWN) fails the unit.
    let success: BTreeSet<i32> = words(&unit_value(&unit, "Service", "SuccessExitStatus"))
        .iter()
        .map(|w| w.parse().expect("numeric exit statuses"))
        .collect();
    assert_eq!(success, BTreeSet::from([1, 2]));

    // ProtectSystem=strict leaves only ReadWritePaths= writable.
    let output = Path::new(output_of(&argv));
    let writable: Vec<String> = unit_values(&unit, "Service", "ReadWritePaths")
        .iter()
        .flat_map(|v| words(v))
        .collect();
    assert_eq!(unit_value(&unit, "Service", "ProtectSystem"), "strict");
    assert!(
        writable
            .iter()
            .any(|dir| output.parent().unwrap().starts_with(dir)),
        "{output:?} is not under ReadWritePaths={writable:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(TEXTFILE_NAME);
    // The unit's command with the target, binary and textfile replaced.
    let run_unit = |textfile: &Path| {
        let argv: Vec<&str> = argv
            .iter()
            .map(|w| match w.as_str() {
                INSTALLED => BIN,
                EXAMPLE_TARGET => LOOPBACK,
                w if Path::new(w) == output => textfile.to_str().unwrap(),
                w => w,
            })
            .collect();
        run(Command::new(argv[0]).args(&argv[1..]))
    };

    let out = run_unit(&file);
    check_textfile_run("systemd_unit_runs_as_written", &out, &file, &success);

    // A run that cannot write its file exits 3, which fails the unit.
    let missing = dir.path().join("missing").join(TEXTFILE_NAME);
    let out = run_unit(&missing);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
}

#[test]
fn systemd_units_verify() {
    let name = "systemd_units_verify";
    if !support::require_programs(name, &["systemd-analyze"]) {
        return;
    }
    // systemd-analyze checks that ExecStart's program exists: point it at
    // the binary under test, in copies of the units.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("portprobe-textfile.service");
    let timer = dir.path().join("portprobe-textfile.timer");
    let installed = read(UNIT);
    assert_eq!(installed.matches(INSTALLED).count(), 1);
    std::fs::write(&unit, installed.replace(INSTALLED, BIN)).unwrap();
    std::fs::write(&timer, read(TIMER)).unwrap();

    // The man page is installed apart (`portprobe --generate man`): do not
    // look for it. Unknown settings are only warnings: none is allowed.
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args([&unit, &timer]));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // The sandbox: an exposure of at most 2.0 on systemd's scale of 10.
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&unit));
    assert!(
        out.status.success(),
        "systemd-analyze security: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let timer = read(TIMER);
    assert_eq!(unit_value(&timer, "Timer", "OnCalendar"), "*:0/5");
    assert_eq!(unit_value(&timer, "Install", "WantedBy"), "timers.target");
}

#[test]
fn cron_line_runs_as_written() {
    let cron = read("cron/portprobe");
    assert!(
        cron.ends_with('\n'),
        "cron ignores a last line without newline"
    );
    let mut env: Vec<(&str, &str)> = Vec::new();
    let mut jobs = Vec::new();
    for line in cron.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.contains(char::is_whitespace) => env.push((k, v)),
            _ => jobs.push(line),
        }
    }
    let [job] = jobs.as_slice() else {
        panic!("one job line, found {jobs:?}")
    };
    // Five schedule fields, the user, then the command.
    let mut fields = job.splitn(7, char::is_whitespace);
    let schedule: Vec<&str> = fields.by_ref().take(5).collect();
    assert_eq!(schedule, ["*/5", "*", "*", "*", "*"]);
    let user = fields.next().unwrap();
    assert!(
        !["", "root"].contains(&user),
        "an unprivileged user: {user}"
    );
    let command = fields.next().unwrap().trim();
    // cron turns % into newlines; `words` refuses it, and what else would
    // make sh split the line differently.
    let argv = words(command);
    check_textfile_command(&argv);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(TEXTFILE_NAME);
    let output = output_of(&argv);
    assert_eq!(command.matches(output).count(), 1);
    assert_eq!(command.matches(EXAMPLE_TARGET).count(), 1);
    let local = command
        .replacen(INSTALLED, &sh_quote(BIN), 1)
        .replacen(EXAMPLE_TARGET, LOOPBACK, 1)
        .replacen(output, &sh_quote(file.to_str().unwrap()), 1);
    // As cron runs it: through sh, with the file's environment only.
    let shell = env
        .iter()
        .find(|(k, _)| *k == "SHELL")
        .map_or("/bin/sh", |(_, v)| v);
    let out = run(Command::new(shell)
        .arg("-c")
        .arg(&local)
        .env_clear()
        .envs(env.iter().copied()));
    // cron mails whatever a job prints: a run that works prints nothing.
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    check_textfile_run(
        "cron_line_runs_as_written",
        &out,
        &file,
        &BTreeSet::from([1, 2]),
    );
}

/// The objects of a Nagios object file: per `define TYPE { ... }`, the type
/// and its directives. `;` starts a comment, as in Nagios.
fn nagios_objects(cfg: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut objects = Vec::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    for line in cfg.lines() {
        let line = line.split(';').next().unwrap().trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("define ") {
            assert!(current.is_none(), "nested define: {line}");
            let kind = rest.trim_end_matches('{').trim();
            current = Some((kind.to_owned(), Vec::new()));
        } else if line == "}" {
            objects.push(current.take().expect("} closes a define"));
        } else {
            let (key, value) = line.split_once(char::is_whitespace).expect("key value");
            let (_, directives) = current.as_mut().expect("a directive inside a define");
            directives.push((key.to_owned(), value.trim().to_owned()));
        }
    }
    assert!(current.is_none(), "unclosed define");
    objects
}

fn directive<'a>(directives: &'a [(String, String)], key: &str) -> &'a str {
    directives
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {directives:?}"))
}

/// The `check_portprobe` command line and the example service's `$ARG1$`.
fn nagios_check() -> (String, String) {
    let objects = nagios_objects(&read("nagios/portprobe.cfg"));
    let command = objects
        .iter()
        .find(|(kind, d)| kind == "command" && directive(d, "command_name") == "check_portprobe")
        .map(|(_, d)| directive(d, "command_line").to_owned())
        .expect("a check_portprobe command");
    let arg = objects
        .iter()
        .filter(|(kind, _)| kind == "service")
        .find_map(|(_, d)| directive(d, "check_command").strip_prefix("check_portprobe!"))
        .expect("a service running check_portprobe!PRODUCT");
    (command, arg.to_owned())
}

#[test]
fn nagios_command_runs_as_defined() {
    let (command, product) = nagios_check();
    assert!(command.starts_with(&format!("{INSTALLED} ")), "{command}");
    let local = command
        .replacen(INSTALLED, &sh_quote(BIN), 1)
        .replace("$HOSTADDRESS$", LOOPBACK)
        .replace("$ARG1$", &product);
    assert!(!local.contains('$'), "a macro left unset: {local}");
    // Nagios hands a command line with quotes to /bin/sh -c.
    let out = run(Command::new("/bin/sh").arg("-c").arg(&local));
    let code = out.status.code().expect("exited");
    let word = ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
        .get(usize::try_from(code).unwrap())
        .unwrap_or_else(|| panic!("exit {code} is no Nagios status"));
    let stdout = text(&out.stdout);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    let [line] = lines.as_slice() else {
        panic!("one status line: {stdout:?}")
    };
    assert!(
        line.starts_with(&format!("PORTPROBE {word} - ")),
        "exit {code}: {line}"
    );
    let (_, perfdata) = line.split_once(" | ").expect("performance data after |");
    for item in perfdata.split_whitespace() {
        let (label, value) = item.split_once('=').expect("label=value");
        assert!(!label.is_empty() && !value.is_empty(), "{item}");
    }
}

#[test]
fn nagios_objects_pass_the_preflight_check() {
    let name = "nagios_objects_pass_the_preflight_check";
    if !support::require_programs(name, &["nagios4"]) {
        return;
    }
    let objects = nagios_objects(&read("nagios/portprobe.cfg"));
    let (_, service) = objects
        .iter()
        .find(|(kind, _)| kind == "service")
        .expect("an example service");
    // What the example service takes from the rest of a configuration: its
    // host and its template, with the least Nagios requires around them.
    let site = format!(
        "define timeperiod {{
    timeperiod_name always
    alias           Always
    monday          00:00-24:00
}}
define command {{
    command_name    notify_nobody
    command_line    /bin/true
}}
define contact {{
    contact_name                  admin
    host_notification_period      always
    service_notification_period   always
    host_notification_options     n
    service_notification_options  n
    host_notification_commands    notify_nobody
    service_notification_commands notify_nobody
}}
define host {{
    host_name             {host}
    address               {LOOPBACK}
    max_check_attempts    1
    check_period          always
    contacts              admin
    notification_interval 0
    notification_period   always
}}
define service {{
    name                  {template}
    register              0
    max_check_attempts    3
    check_interval        5
    retry_interval        1
    check_period          always
    contacts              admin
    notification_interval 0
    notification_period   always
}}
",
        host = directive(service, "host_name"),
        template = directive(service, "use"),
    );
    let dir = tempfile::tempdir().unwrap();
    let site_cfg = dir.path().join("site.cfg");
    std::fs::write(&site_cfg, site).unwrap();
    // Nagios checks its directories as the user it would run as: this one.
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .expect("a user name");
    let group = nix::unistd::Group::from_gid(nix::unistd::getegid())
        .unwrap()
        .expect("a group name");
    let d = dir.path().display();
    let main = format!(
        "cfg_file={site}
cfg_file={ours}
nagios_user={user}
nagios_group={group}
check_result_path={d}
lock_file={d}/nagios.lock
log_file={d}/nagios.log
illegal_macro_output_chars=`~$&|'\"<>
",
        site = site_cfg.display(),
        ours = contrib("nagios/portprobe.cfg").display(),
        user = user.name,
        group = group.name,
    );
    let main_cfg = dir.path().join("nagios.cfg");
    std::fs::write(&main_cfg, main).unwrap();
    let out = run(Command::new("nagios4").arg("-v").arg(&main_cfg));
    let report = text(&out.stdout);
    assert!(
        out.status.success()
            && report.contains("Total Warnings: 0")
            && report.contains("Total Errors:   0"),
        "nagios4 -v: {report}{}",
        text(&out.stderr)
    );
}

/// docs/monitoring.md's "Scheduled runs" shows the recipes as they are:
/// every line of its code blocks (but `[...]`, for a cut) is a line of a
/// recipe, or of a recipe's comments, where the commands that install it
/// are.
#[test]
fn the_docs_show_the_recipes_as_they_are() {
    let doc = include_str!("../docs/monitoring.md");
    let start = doc
        .find("\n## Scheduled runs\n")
        .expect("docs/monitoring.md has a section Scheduled runs");
    let section = &doc[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let recipes: Vec<String> = [
        UNIT,
        TIMER,
        "cron/portprobe",
        "nagios/portprobe.cfg",
        "prometheus/portprobe-rules.yml",
    ]
    .iter()
    .flat_map(|path| {
        read(path)
            .lines()
            .map(|l| l.trim().trim_start_matches('#').trim().to_owned())
            .collect::<Vec<_>>()
    })
    .collect();
    let (mut blocks, mut in_block) = (0, false);
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            blocks += usize::from(in_block);
        } else if in_block && !line.trim().is_empty() && line.trim() != "[...]" {
            assert!(
                recipes.iter().any(|r| r == line.trim()),
                "docs/monitoring.md's Scheduled runs shows a line no recipe has: {line}"
            );
        }
    }
    assert!(blocks >= 8, "the recipes are shown: {blocks} code blocks");
}
