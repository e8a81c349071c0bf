//! The page for people at `/`: a form (target, product from the catalog,
//! optional ports) that runs a probe and shows the report as
//! [`crate::report::html`] writes it, and the last probes run, which every
//! visitor sees: so only probes of targets the allow-list let through, by
//! the catalog's product names, never a refused target or the words of
//! another visitor's request. Plain HTML and CSS, no script, readable on a
//! phone as on a desktop; every piece of text from a request, the network
//! or the catalog is escaped. [`handler`] serves it, in two parts while a
//! probe runs.

mod handler;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

pub use handler::handler;

use crate::report::html::{self, escape};

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

/// What the page shows under the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Nothing asked yet.
    Nothing,
    /// A report, as [`html::render`] wrote it (already HTML).
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

impl Form {
    /// The form's values from a query string: the last of each, each at
    /// most 253 characters, of the first eight parameters.
    pub fn read(query: &str) -> Form {
        let mut form = Form::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()).take(8) {
            let v: String = v.chars().take(253).collect();
            match &*k {
                "target" => form.target = v,
                "product" => form.product = v,
                "ports" => form.ports = v,
                _ => {}
            }
        }
        form
    }
}

/// The page's own style (the report's is [`html::STYLE`]): one column on a
/// phone, the form's fields side by side where there is room, text that
/// wraps rather than widens the page.
const STYLE: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1b1b;background:#fff;max-width:62rem;margin:0 auto;padding:1rem;overflow-wrap:anywhere}\
h1{font-size:1.6rem;margin:.25rem 0}\
h2{font-size:1.3rem;margin:1.5rem 0 .5rem}\
h3{font-size:1.1rem;margin:1.25rem 0 .5rem}\
.lead{margin:.25rem 0 1rem;color:#444}\
form{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin:0 0 1rem}\
form label{display:flex;flex-direction:column;flex:1 1 13rem;min-width:0;font-weight:600;font-size:.95rem}\
input,select,button{font:inherit;font-weight:normal;height:2.6rem;padding:.3rem .5rem;border:1px solid #8a8a8a;border-radius:.25rem;width:100%;min-width:0;max-width:100%;background:#fff;color:inherit}\
button{width:auto;flex:0 0 auto;background:#0b57d0;border-color:#0b57d0;color:#fff;font-weight:600;padding:.3rem 1.4rem;cursor:pointer}\
.probing{background:#e8f0fe;border-left:.5rem solid #0b57d0;padding:.75rem 1rem;border-radius:.25rem}\
.probing:has(~ section){display:none}\
.spinner{display:inline-block;width:1em;height:1em;margin-right:.5em;vertical-align:-.15em;border:.18em solid #0b57d0;border-right-color:transparent;border-radius:50%;animation:spin 1s linear infinite}\
@keyframes spin{to{transform:rotate(360deg)}}\
@media (prefers-reduced-motion:reduce){.spinner{animation:none}}\
.refused{color:#b3261e;font-weight:600}\
.recent{border-collapse:collapse;width:100%}\
.recent th,.recent td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
@media (max-width:40rem){\
.recent thead{display:none}\
.recent,.recent tbody,.recent tr,.recent td{display:block;width:auto}\
.recent tr{border:1px solid #ddd;border-radius:.25rem;margin:.5rem 0;padding:.3rem .5rem}\
.recent td{border:0;padding:.1rem 0}\
.recent td::before{content:attr(data-label) \": \";font-weight:600;color:#444}\
}";

/// The page up to the end of the form: what is sent first.
pub fn head(products: &[String], form: &Form) -> String {
    let title = if form.target.is_empty() {
        "portprobe".to_string()
    } else {
        format!("portprobe: {}", escape(&form.target))
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}{}</style></head><body>\n\
<h1>portprobe</h1>\n<p class=\"lead\">Can this host be reached on every port an Apple product needs?</p>\n\
<form id=\"probe\" method=\"get\" action=\"/\">\n\
<label>Host <input id=\"target\" name=\"target\" required maxlength=\"253\" value=\"{}\"></label>\n\
<label>Product <select id=\"product\" name=\"product\">",
        html::STYLE,
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
    s
}

/// What is being probed, shown while the probe runs and hidden (where the
/// browser can tell) once the report follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probing<'a> {
    /// The target, as asked.
    pub target: &'a str,
    /// The products, by the catalog's names.
    pub products: &'a [String],
    /// The ports asked for besides (`548/tcp,53/udp`), or empty.
    pub ports: &'a str,
    /// Ports planned per address.
    pub planned: usize,
    /// The addresses the target has (0 when it did not resolve).
    pub addresses: usize,
    /// The probe's deadline.
    pub budget: Duration,
}

/// The line that says a probe runs.
pub fn probing(p: &Probing<'_>) -> String {
    let mut what: Vec<String> = p.products.to_vec();
    if !p.ports.is_empty() {
        what.push(p.ports.to_string());
    }
    let ports = if p.planned == 1 { "port" } else { "ports" };
    let on = match p.addresses {
        0 | 1 => String::new(),
        n => format!(" on each of its {n} addresses"),
    };
    format!(
        "<p id=\"probing\" class=\"probing\" role=\"status\"><span class=\"spinner\" aria-hidden=\"true\"></span>\
Probing {} for {}: {} {ports}{on}, then where any blocked one stops. \
This takes a few seconds, at most {}; the report appears here when it is done.</p>\n",
        escape(p.target),
        escape(&what.join(", ")),
        p.planned,
        seconds(p.budget)
    )
}

/// `30 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The report or the refusal.
pub fn shown(shown: &Shown) -> String {
    match shown {
        Shown::Nothing => String::new(),
        Shown::Report(fragment) => fragment.clone(),
        Shown::Refused(why) => format!(
            "<section id=\"not-probed\"><h2>Not probed</h2>\n<p id=\"refused\" class=\"refused\">{}</p></section>\n",
            escape(why)
        ),
    }
}

/// The last probes and the end of the page.
pub fn end(recent: &[Recent]) -> String {
    let mut s = String::from("<section id=\"last\"><h2>Last probes</h2>\n");
    if recent.is_empty() {
        s.push_str("<p>None yet.</p>\n");
    } else {
        s.push_str("<table id=\"recent\" class=\"recent\"><thead><tr><th>At</th><th>Host</th><th>Checked</th><th>Status</th><th>Seconds</th></tr></thead><tbody>\n");
        for r in recent {
            let _ = writeln!(
                s,
                "<tr><td data-label=\"At\">{}</td><td data-label=\"Host\">{}</td><td data-label=\"Checked\">{}</td><td data-label=\"Status\">{}</td><td data-label=\"Seconds\">{:.2}</td></tr>",
                escape(&r.at),
                escape(&r.target),
                escape(&r.what),
                escape(&r.status),
                r.seconds
            );
        }
        s.push_str("</tbody></table>\n");
    }
    s.push_str("</section>\n</body></html>\n");
    s
}

/// The whole page at once.
pub fn render(products: &[String], form: &Form, what: &Shown, recent: &[Recent]) -> String {
    format!("{}{}{}", head(products, form), shown(what), end(recent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_outside_is_escaped() {
        let evil = "<script>alert('x')</script>&\"\u{202e}";
        let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\u{202e}";
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
        let products = ["ARD".to_string(), evil.to_string()];
        let page = render(&products, &form, &Shown::Refused(evil.to_string()), &recent)
            + &probing(&Probing {
                target: evil,
                products: &products,
                ports: evil,
                planned: 6,
                addresses: 2,
                budget: Duration::from_secs(30),
            });
        assert!(
            !page.contains("<script>") && !page.contains('\u{202e}'),
            "{page}"
        );
        // The title, the target, the ports, a product, the refusal, the
        // history's target and what it checked, the probing line's target,
        // products and ports.
        assert_eq!(page.matches(escaped).count(), 11, "{page}");
        assert!(page.contains("<option value=\"ARD\" selected>ARD</option>"));
        assert!(page.contains(": 6 ports on each of its 2 addresses, then where any blocked one stops. This takes a few seconds, at most 30 s;"), "{page}");
    }

    #[test]
    fn a_phone_gets_the_page_at_its_own_width() {
        let page = render(&[], &Form::default(), &Shown::Nothing, &[]);
        assert!(
            page.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(page.contains("<p>None yet.</p>"));
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
