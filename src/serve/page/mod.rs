//! The page for people at `/`: a form (target, product from the catalog)
//! that runs a probe and shows the report as the terminal shows it, and the
//! last probes run, which every visitor sees: so only probes of targets the
//! allow-list let through, by the catalog's product names, never a refused
//! target or the words of another visitor's request. Plain HTML, no script;
//! every piece of text from a request, the network or the catalog is
//! escaped.

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Probes remembered for the page.
pub const RECENT: usize = 20;

/// One probe served, as the page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recent {
    /// When it ended (local time).
    pub at: String,
    /// The target, as asked: one the allow-list let through.
    pub target: String,
    /// The products, by the catalog's names, and the ports.
    pub what: String,
    /// `OK`, `WARNING`, `CRITICAL` or `UNKNOWN`.
    pub status: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// The last probes, newest first, at most [`RECENT`].
#[derive(Debug, Default)]
pub struct History(VecDeque<Recent>);

impl History {
    /// Remembers `r`, forgetting the oldest past [`RECENT`].
    pub fn push(&mut self, r: Recent) {
        self.0.push_front(r);
        self.0.truncate(RECENT);
    }

    /// The probes remembered, newest first.
    pub fn list(&self) -> Vec<Recent> {
        self.0.iter().cloned().collect()
    }
}

/// `s` safe inside HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the page shows under the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Nothing asked yet.
    Nothing,
    /// A report, as the terminal shows it.
    Report(String),
    /// Why the probe was not run.
    Refused(String),
}

/// The form's values, as last submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    /// The target.
    pub target: String,
    /// The product chosen.
    pub product: String,
    /// The ports given.
    pub ports: String,
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;max-width:80em}\
pre{background:#f4f4f4;padding:1em;overflow-x:auto}\
label{margin-right:1em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
.refused{color:#a00}";

/// The whole page.
pub fn render(products: &[String], form: &Form, shown: &Shown, recent: &[Recent]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>portprobe</title><style>{STYLE}</style></head><body>\n\
<h1>portprobe</h1>\n<p>Can this host be reached on every port an Apple product needs?</p>\n\
<form id=\"probe\" method=\"get\" action=\"/\">\n\
<label>Host <input id=\"target\" name=\"target\" required maxlength=\"253\" value=\"{}\"></label>\n\
<label>Product <select id=\"product\" name=\"product\">",
        escape(&form.target)
    );
    for p in products {
        let selected = if *p == form.product { " selected" } else { "" };
        let _ = write!(s, "<option value=\"{0}\"{selected}>{0}</option>", escape(p));
    }
    let _ = write!(
        s,
        "</select></label>\n<label>Ports (optional) <input id=\"ports\" name=\"ports\" maxlength=\"200\" placeholder=\"548,5900,53/udp\" value=\"{}\"></label>\n\
<button id=\"run\" type=\"submit\">Probe</button>\n</form>\n",
        escape(&form.ports)
    );
    match shown {
        Shown::Nothing => {}
        Shown::Report(text) => {
            let _ = write!(
                s,
                "<h2>Report</h2>\n<pre id=\"report\">{}</pre>\n",
                escape(text)
            );
        }
        Shown::Refused(why) => {
            let _ = write!(
                s,
                "<h2>Not probed</h2>\n<p id=\"refused\" class=\"refused\">{}</p>\n",
                escape(why)
            );
        }
    }
    s.push_str("<h2>Last probes</h2>\n");
    if recent.is_empty() {
        s.push_str("<p>None yet.</p>\n");
    } else {
        s.push_str("<table id=\"recent\"><tr><th>at</th><th>host</th><th>checked</th><th>status</th><th>seconds</th></tr>\n");
        for r in recent {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                escape(&r.at),
                escape(&r.target),
                escape(&r.what),
                escape(&r.status),
                r.seconds
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_outside_is_escaped() {
        let evil = "<script>alert('x')</script>&\"";
        let form = Form {
            target: evil.to_string(),
            product: "ARD".to_string(),
            ports: evil.to_string(),
        };
        let recent = [Recent {
            at: "12:00:00".to_string(),
            target: evil.to_string(),
            what: evil.to_string(),
            status: "CRITICAL".to_string(),
            seconds: 0.5,
        }];
        for shown in [
            Shown::Report(evil.to_string()),
            Shown::Refused(evil.to_string()),
        ] {
            let page = render(
                &["ARD".to_string(), evil.to_string()],
                &form,
                &shown,
                &recent,
            );
            assert!(!page.contains("<script>"), "{page}");
            assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
            assert!(page.contains("<option value=\"ARD\" selected>ARD</option>"));
        }
    }

    #[test]
    fn the_history_is_bounded_newest_first() {
        let mut h = History::default();
        for n in 0..30 {
            h.push(Recent {
                at: n.to_string(),
                target: String::new(),
                what: String::new(),
                status: String::new(),
                seconds: 0.0,
            });
        }
        let list = h.list();
        assert_eq!(list.len(), RECENT);
        assert_eq!(list[0].at, "29");
    }
}
