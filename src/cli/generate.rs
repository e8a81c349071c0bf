//! `--generate`: the man page and the shell completion scripts, rendered from
//! the clap definition that parses the command line, so that neither can
//! drift from the options portprobe accepts.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap::error::ErrorKind;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use super::args::{Cli, Generate};
use crate::report::Status;

/// `--generate` goes with no subcommand (its conflicts with every probe
/// option and host are clap's own).
pub(super) fn alone(cli: Cli) -> Result<Cli, clap::Error> {
    if cli.generate.is_some() && cli.command.is_some() {
        return Err(Cli::command().error(
            ErrorKind::ArgumentConflict,
            "the argument '--generate' cannot be used with a subcommand",
        ));
    }
    Ok(cli)
}

/// Prints what `what` names on stdout.
pub(super) fn print(what: Generate) -> Result<Status> {
    super::write_stdout(&render(what)?)?;
    Ok(Status::Ok)
}

/// The man page or the completion script `what` names.
fn render(what: Generate) -> Result<String> {
    let shell = match what {
        Generate::Man => return man_page(),
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompletePowershell => Shell::PowerShell,
    };
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    String::from_utf8(script).context("the completion script is not UTF-8")
}

/// The man page: the name, synopsis, description and options of the command,
/// then each subcommand with its synopsis and options, then the sections of
/// the text `--help` ends with (examples, port states, exit codes).
fn man_page() -> Result<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let man = Man::new(cmd.clone()).title(cmd.get_name().to_uppercase());
    let mut page = rendered(|w| man.render_title(w))?;
    // Option names must read as they are typed: no hyphenation, and no
    // spaces stretched between the words of a synopsis.
    let mut layout = Roff::new();
    layout.control("nh", []).control("ad", ["l"]);
    page.push_str(without_preamble(&layout.render()));
    for part in [
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        page.push_str(without_preamble(&rendered(|w| part(&man, w))?));
    }

    let mut roff = Roff::new();
    roff.control("SH", ["SUBCOMMANDS"]);
    page.push_str(without_preamble(&roff.render()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page.push_str(&subcommand(&cmd, sub)?);
    }

    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        let mut roff = Roff::new();
        for paragraph in after
            .to_string()
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
        {
            help_section(&mut roff, &HelpSection::parse(paragraph));
        }
        page.push_str(without_preamble(&roff.render()));
    }
    Ok(page)
}

/// One subcommand: its full name as a subheading, what it does, its
/// synopsis and its options (or a pointer to OPTIONS when each of them is
/// one described there).
fn subcommand(cmd: &clap::Command, sub: &clap::Command) -> Result<String> {
    let name = sub.get_bin_name().unwrap_or(sub.get_name());
    let mut head = Roff::new();
    head.control("SS", [name]);
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        head.text([roman(about.to_string())]);
    }
    head.control("PP", []);
    let man = Man::new(sub.clone());
    let mut text = without_preamble(&head.render()).to_owned();
    text.push_str(&without_heading(&rendered(|w| {
        man.render_synopsis_section(w)
    })?));

    let mut args = sub.get_arguments().filter(|a| !a.is_hide_set()).peekable();
    if args.peek().is_none() {
        return Ok(text);
    }
    let described_above = args.all(|a| {
        cmd.get_arguments()
            .any(|b| b.get_id() == a.get_id() && b.get_help() == a.get_help())
    });
    if described_above {
        let mut roff = Roff::new();
        roff.control("PP", []);
        roff.text([roman("Its options are those under OPTIONS above.")]);
        text.push_str(without_preamble(&roff.render()));
    } else {
        text.push_str(&without_heading(&rendered(|w| {
            man.render_options_section(w)
        })?));
    }
    Ok(text)
}

/// What one of clap_mangen's renderers writes.
fn rendered(render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<String> {
    let mut out = Vec::new();
    render(&mut out).context("cannot render the man page")?;
    String::from_utf8(out).context("the man page is not UTF-8")
}

/// A rendered part without the preamble every rendering starts with (it
/// defines a string for apostrophes, which the page needs only once).
fn without_preamble(part: &str) -> &str {
    let preamble = Roff::new().render();
    part.strip_prefix(preamble.as_str()).unwrap_or(part)
}

/// A rendered section without its preamble and `.SH` heading, to go under a
/// subcommand's subheading.
fn without_heading(section: &str) -> String {
    let body = without_preamble(section);
    match body.split_once('\n') {
        Some((first, rest)) if first.starts_with(".SH") => rest.to_owned(),
        _ => body.to_owned(),
    }
}

/// One paragraph of the text `--help` ends with, read as a man page section.
#[derive(Debug, PartialEq)]
struct HelpSection {
    /// The section's name: the paragraph's heading without a parenthesis.
    title: String,
    /// The parenthesis of the heading, as a sentence.
    note: Option<String>,
    body: Body,
}

/// The lines under a heading.
#[derive(Debug, PartialEq)]
enum Body {
    /// Terms with their descriptions, as `--help` aligns them in columns.
    Table(Vec<(String, String)>),
    /// Lines to keep as they are (examples), without their common indent.
    Lines(Vec<String>),
}

impl HelpSection {
    /// Reads a paragraph whose first line is a heading ending in `:` (a
    /// paragraph without one goes under NOTES).
    fn parse(paragraph: &str) -> HelpSection {
        let mut lines: Vec<&str> = paragraph.lines().filter(|l| !l.trim().is_empty()).collect();
        let heading = match lines.first() {
            Some(first) if !first.starts_with(' ') && first.ends_with(':') => {
                let heading = first.trim_end_matches(':').to_owned();
                lines.remove(0);
                heading
            }
            _ => "Notes".to_owned(),
        };
        let (title, note) = match heading.split_once(" (") {
            Some((title, note)) => (title, Some(sentence(note.trim_end_matches(')')))),
            None => (heading.as_str(), None),
        };
        HelpSection {
            title: title.to_uppercase(),
            note,
            body: Body::parse(&lines),
        }
    }
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

impl Body {
    /// A table when every line at the least indent has its description
    /// start at one column after a gap of two or more spaces, and every more
    /// indented line continues a description at that column; lines as they
    /// are otherwise.
    fn parse(lines: &[&str]) -> Body {
        let lines: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
        let indent_of = |l: &[char]| l.iter().take_while(|c| **c == ' ').count();
        let indent = lines.iter().map(|l| indent_of(l)).min().unwrap_or(0);
        let as_lines = || {
            Body::Lines(
                lines
                    .iter()
                    .map(|l| l[indent..].iter().collect::<String>().trim_end().to_owned())
                    .collect(),
            )
        };
        let entries: Vec<&Vec<char>> = lines.iter().filter(|l| indent_of(l) == indent).collect();
        let Some(column) = entries
            .iter()
            .map(|l| description_columns(l, indent))
            .reduce(|a, b| a.into_iter().filter(|c| b.contains(c)).collect())
            .and_then(|common| common.into_iter().max())
        else {
            return as_lines();
        };
        let mut table: Vec<(String, String)> = Vec::new();
        for line in &lines {
            let text: String = line[column.min(line.len())..].iter().collect();
            if indent_of(line) == indent {
                let term: String = line[indent..column].iter().collect();
                table.push((term.trim_end().to_owned(), text.trim().to_owned()));
            } else if indent_of(line) == column
                && let Some((_, description)) = table.last_mut()
            {
                description.push(' ');
                description.push_str(text.trim());
            } else {
                return as_lines();
            }
        }
        Body::Table(table)
    }
}

/// The columns past `indent` where a word starts after two or more spaces.
fn description_columns(line: &[char], indent: usize) -> Vec<usize> {
    (indent + 2..line.len())
        .filter(|&c| line[c] != ' ' && line[c - 1] == ' ' && line[c - 2] == ' ')
        .collect()
}

/// Writes `section` as a man page section.
fn help_section(roff: &mut Roff, section: &HelpSection) {
    roff.control("SH", [section.title.as_str()]);
    if let Some(note) = &section.note {
        roff.text([roman(note.as_str())]);
    }
    match &section.body {
        Body::Table(rows) => {
            for (term, description) in rows {
                roff.control("TP", []);
                roff.text([bold(term.as_str())]);
                roff.text([roman(description.as_str())]);
            }
        }
        Body::Lines(lines) => {
            roff.control("PP", []);
            roff.control("nf", []);
            for line in lines {
                roff.text([roman(line.as_str())]);
            }
            roff.control("fi", []);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn aligned_columns_read_as_a_table() {
        let section = HelpSection::parse(
            "Exit codes (the usual convention):\n  0  OK       all is well\n  3  UNKNOWN  bad input,\n              or worse",
        );
        assert_eq!(section.title, "EXIT CODES");
        assert_eq!(section.note.as_deref(), Some("The usual convention."));
        assert_eq!(
            section.body,
            Body::Table(vec![
                ("0  OK".into(), "all is well".into()),
                ("3  UNKNOWN".into(), "bad input, or worse".into())
            ])
        );
    }

    #[test]
    fn lines_without_common_columns_stay_lines() {
        let section = HelpSection::parse(
            "Examples:\n  portprobe a  --ports 1\n  portprobe b --ports 2\n    (indented)",
        );
        assert_eq!(section.title, "EXAMPLES");
        assert_eq!(section.note, None);
        assert_eq!(
            section.body,
            Body::Lines(vec![
                "portprobe a  --ports 1".into(),
                "portprobe b --ports 2".into(),
                "  (indented)".into()
            ])
        );
    }

    #[test]
    fn a_continuation_off_the_column_is_no_table() {
        let body = Body::parse(&["  a    one", "  b    two", "      three"]);
        assert_eq!(
            body,
            Body::Lines(vec![
                "a    one".into(),
                "b    two".into(),
                "    three".into()
            ])
        );
    }

    #[test]
    fn a_paragraph_without_heading_goes_under_notes() {
        let section = HelpSection::parse("Just a remark.");
        assert_eq!(section.title, "NOTES");
        assert_eq!(section.body, Body::Lines(vec!["Just a remark.".into()]));
        assert_eq!(HelpSection::parse("").body, Body::Lines(Vec::new()));
    }

    #[test]
    fn every_output_renders() {
        for what in Generate::value_variants() {
            let text = render(*what).unwrap();
            assert!(text.contains("portprobe"), "{what:?}");
        }
    }
}
