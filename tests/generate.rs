//! Whole-program tests of `--generate`: the man page renders with man-db
//! without a warning and says what `--help` says, the bash completion script
//! parses, registers and completes, the other shells' scripts start as those
//! shells expect, and a bad value, a probe option or a subcommand given with
//! `--generate` is bad input.

mod support;

use support::portprobe;

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// What `portprobe --generate WHAT` prints, which it must print with exit 0
/// and nothing on stderr.
fn generated(what: &str) -> String {
    let o = portprobe(&["--generate", what]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "--generate {what}: {stderr}");
    assert!(stderr.is_empty(), "--generate {what}: {stderr}");
    let text = String::from_utf8(o.stdout).expect("UTF-8");
    assert!(!text.trim().is_empty(), "--generate {what} printed nothing");
    text
}

/// `text` written to a new temporary file.
fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

/// `text` with every run of white space made one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `man -l` on `page`, 80 columns wide, with every groff warning on and no
/// setting of this machine's shaping it: (stdout, stderr).
fn man(page: &Path) -> (String, String) {
    let o = Command::new("man")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .args(["--warnings=w", "--pager=cat", "-l"])
        .arg(page)
        .output()
        .expect("run man");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "man -l failed ({}): {stderr}", o.status);
    (String::from_utf8_lossy(&o.stdout).into_owned(), stderr)
}

#[test]
fn the_man_page_renders_without_warnings_and_says_what_help_says() {
    let name = "the_man_page_renders_without_warnings_and_says_what_help_says";
    if !support::require_programs(name, &["man", "groff", "nroff"]) {
        return;
    }
    let page = file_with(&generated("man"));
    let (text, warnings) = man(page.path());
    assert!(warnings.is_empty(), "man warns:\n{warnings}");

    for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS"] {
        assert!(
            text.lines().any(|l| l == heading),
            "no {heading} section:\n{text}"
        );
    }
    for sub in ["portprobe probe", "portprobe products", "portprobe ports"] {
        assert!(
            text.lines().any(|l| l.trim() == sub),
            "no subheading {sub}:\n{text}"
        );
    }
    let text = words(&text);
    // Each subcommand's own options are there too.
    for needle in [
        "--all Show every port of the catalog",
        "--json Print JSON instead of a table",
    ] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }

    let help = String::from_utf8(portprobe(&["--help"]).stdout).expect("UTF-8");
    // Every long option --help names.
    let options: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    for needle in ["--product", "--ports", "--generate"] {
        assert!(options.contains(&needle), "--help lacks {needle}");
    }
    for option in options {
        assert!(text.contains(option), "man page lacks {option}");
    }
    // The examples, the port states and the exit code table --help ends
    // with, line for line under a heading of their own.
    let after = &help[help.find("Examples:").expect("--help has examples")..];
    let paragraphs: Vec<&str> = after.split("\n\n").collect();
    assert!(paragraphs.len() >= 3, "{after}");
    for paragraph in paragraphs {
        let (heading, body) = paragraph.split_once('\n').expect("a heading");
        let title = heading.split(" (").next().unwrap().trim_end_matches(':');
        let section = format!("{} {}", title.to_uppercase(), words(body));
        assert!(text.contains(&words(body)), "lacks {heading}:\n{text}");
        if !heading.contains(" (") {
            assert!(text.contains(&section), "lacks {section:?}:\n{text}");
        }
    }
    for row in portprobe::report::EXIT_CODES.lines().skip(1) {
        assert!(text.contains(&words(row)), "lacks exit code {row:?}");
    }
    assert!(text.contains("EXIT CODES The Nagios/Icinga plugin convention. 0 OK"));
}

#[test]
fn the_bash_script_parses_registers_and_completes() {
    let script = file_with(&generated("complete-bash"));
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(script.path())
        .output()
        .expect("run bash");
    assert!(
        syntax.status.success() && syntax.stderr.is_empty(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    // Sourced, the script registers a completion; then its function is
    // asked what follows `portprobe --gen` and `portprobe --generate `.
    let session = r#"
        source "$1"
        complete -p portprobe
        COMP_WORDS=(portprobe --gen); COMP_CWORD=1
        _portprobe portprobe --gen portprobe
        printf 'option %s\n' "${COMPREPLY[@]}"
        COMP_WORDS=(portprobe --generate ""); COMP_CWORD=2
        _portprobe portprobe "" --generate
        printf 'value %s\n' "${COMPREPLY[@]}"
    "#;
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", session, "bash"])
        .arg(script.path())
        .output()
        .expect("run bash");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("complete ")
            && lines[0].contains(" -F _portprobe ")
            && lines[0].ends_with(" portprobe"),
        "{out}"
    );
    assert!(lines.contains(&"option --generate"), "{out}");
    let values: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("value "))
        .collect();
    assert_eq!(
        values,
        [
            "man",
            "complete-bash",
            "complete-zsh",
            "complete-fish",
            "complete-powershell"
        ],
        "{out}"
    );
}

#[test]
fn the_other_shells_scripts_start_as_their_shells_expect() {
    let zsh = generated("complete-zsh");
    assert!(zsh.starts_with("#compdef portprobe\n"), "{zsh}");
    assert!(zsh.contains("_portprobe \"$@\""), "{zsh}");

    let fish = generated("complete-fish");
    let completes: Vec<&str> = fish
        .lines()
        .filter(|l| l.starts_with("complete "))
        .collect();
    assert!(completes.len() > 20, "{fish}");
    for line in completes {
        assert!(line.starts_with("complete -c portprobe "), "{line}");
    }
    assert!(fish.contains(" -l generate "), "{fish}");

    let powershell = generated("complete-powershell");
    assert!(
        powershell
            .trim_start()
            .starts_with("using namespace System.Management.Automation\n"),
        "{powershell}"
    );
    assert!(
        powershell.contains("Register-ArgumentCompleter -Native -CommandName 'portprobe'"),
        "{powershell}"
    );
}

/// Bad input: exit 3, nothing on stdout and one line on stderr that names the
/// problem.
fn assert_bad_input(args: &[&str], expected: &[&str]) {
    let o = portprobe(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("portprobe: "), "{args:?}: {err}");
    for needle in expected {
        assert!(err.contains(needle), "{args:?}: {err} lacks {needle}");
    }
    assert!(o.stdout.is_empty(), "{args:?}");
}

#[test]
fn generate_takes_one_of_its_values_and_no_probe_option_or_subcommand() {
    assert_bad_input(
        &["--generate", "troff"],
        &[
            "'troff'",
            "man, complete-bash, complete-zsh, complete-fish, complete-powershell",
        ],
    );
    assert_bad_input(
        &["--generate", "man", "server.local"],
        &["'--generate <WHAT>' cannot be used with '[HOST]...'"],
    );
    assert_bad_input(
        &["--generate", "man", "--product", "ARD"],
        &["cannot be used with '--product <NAME>'"],
    );
    assert_bad_input(
        &["--generate", "complete-bash", "--json"],
        &["cannot be used with '--json'"],
    );
    assert_bad_input(
        &["--generate", "man", "products"],
        &["'--generate' cannot be used with a subcommand"],
    );

    // --catalog may come along; the page does not read it.
    let o = portprobe(&[
        "--catalog",
        "/nonexistent/catalog.toml",
        "--generate",
        "man",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), generated("man"));
}
