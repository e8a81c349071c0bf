//! Durations on the command line (`500ms`, `2s`, `1.5m`, `1h`, `2d`), each
//! option with the least and the most it accepts. The most keeps every
//! timer far inside what tokio's clock can add without overflowing; the
//! least refuses values too short to mean anything (a zero wait, a run
//! that ends before a single answer could arrive).
//!
//! Parsing is exact: the decimal number is scaled to nanoseconds with
//! integer arithmetic (no floating point), digits past a nanosecond are
//! dropped, and the work is linear in the length of the text.

use std::time::Duration;

/// What one duration option accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The option, for messages (`--timeout`).
    pub option: &'static str,
    /// The shortest accepted.
    pub least: Duration,
    /// The longest accepted.
    pub most: Duration,
}

/// Seconds in an hour and a day.
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// `--timeout`: one attempt's wait. Less than a millisecond is shorter than
/// a loopback round trip under load; an hour is longer than any answer.
pub const TIMEOUT: Bounds = Bounds {
    option: "--timeout",
    least: Duration::from_millis(1),
    most: Duration::from_secs(HOUR),
};

/// `--max-time` of a probe run: at least the shortest wait for a TCP
/// answer (100 ms), at most 30 days.
pub const MAX_TIME: Bounds = Bounds {
    option: "--max-time",
    least: crate::engine::TCP_FLOOR,
    most: Duration::from_secs(30 * DAY),
};

/// `--watch`: at least a second between rounds, at most 30 days.
pub const WATCH: Bounds = Bounds {
    option: "--watch",
    least: Duration::from_secs(1),
    most: Duration::from_secs(30 * DAY),
};

/// `portprobe serve --max-time`: at least the shortest budget a probe is
/// given (500 ms), at most an hour for one HTTP request.
pub const SERVE_MAX_TIME: Bounds = Bounds {
    option: "--max-time",
    least: Duration::from_millis(500),
    most: Duration::from_secs(HOUR),
};

/// `portprobe serve --header-timeout`: from a tenth of a second (a request
/// head on loopback) to an hour.
pub const SERVE_HEADER_TIMEOUT: Bounds = Bounds {
    option: "--header-timeout",
    least: Duration::from_millis(100),
    most: Duration::from_secs(HOUR),
};

/// `portprobe serve --idle-timeout`: from a tenth of a second to an hour.
pub const SERVE_IDLE_TIMEOUT: Bounds = Bounds {
    option: "--idle-timeout",
    least: Duration::from_millis(100),
    most: Duration::from_secs(HOUR),
};

/// Every option's bounds.
#[cfg(test)]
const ALL: [Bounds; 6] = [
    TIMEOUT,
    MAX_TIME,
    WATCH,
    SERVE_MAX_TIME,
    SERVE_HEADER_TIMEOUT,
    SERVE_IDLE_TIMEOUT,
];

/// The units' lengths in nanoseconds.
const MS: u128 = 1_000_000;
const S: u128 = 1000 * MS;
const M: u128 = 60 * S;
const H: u128 = 60 * M;
const D: u128 = 24 * H;

/// Units read and their lengths; a bare number is seconds.
const UNITS: [(&str, u128); 7] = [
    ("ms", MS),
    ("s", S),
    ("", S),
    ("m", M),
    ("min", M),
    ("h", H),
    ("d", D),
];

/// Parses `s` as a duration within `b`, or says in one line why not.
pub fn parse(s: &str, b: Bounds) -> Result<Duration, String> {
    let too_long = || {
        format!(
            "`{s}` is too long for {}: the longest accepted is {}",
            b.option,
            show(b.most)
        )
    };
    let nanos = match nanoseconds(s) {
        Ok(n) => n,
        Err(Overflow::No) => {
            return Err(format!(
                "`{s}` is not a duration (expected a number and a unit: 500ms, 2s, 1.5m, 1h, 2d)"
            ));
        }
        Err(Overflow::Yes) => return Err(too_long()),
    };
    if nanos > b.most.as_nanos() {
        return Err(too_long());
    }
    if nanos < b.least.as_nanos() {
        return Err(format!(
            "`{s}` is too short for {}: the shortest accepted is {}",
            b.option,
            show(b.least)
        ));
    }
    // At most the longest bound, which fits a u64 of nanoseconds.
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| too_long())?,
    ))
}

/// Why text is no number of nanoseconds.
#[derive(Debug, PartialEq, Eq)]
enum Overflow {
    /// It is no duration at all.
    No,
    /// It is one, but more nanoseconds than a `u128` holds.
    Yes,
}

/// The nanoseconds `s` stands for, rounded down.
fn nanoseconds(s: &str) -> Result<u128, Overflow> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start();
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, n)| *n)
        .ok_or(Overflow::No)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(Overflow::No);
    }
    let mut nanos: u128 = 0;
    for d in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(d - b'0')))
            .ok_or(Overflow::Yes)?;
    }
    nanos = nanos.checked_mul(scale).ok_or(Overflow::Yes)?;
    // The fraction: each digit is worth a tenth of the one before; past a
    // nanosecond of the largest unit nothing is left to add.
    let mut place = scale;
    for d in fraction.bytes() {
        place /= 10;
        nanos += u128::from(d - b'0') * place;
    }
    Ok(nanos)
}

/// A duration as the parser reads it back: the largest unit it is a whole
/// number of (`30d`, `1h`, `90s`, `1500ms`), else seconds with a fraction.
pub fn show(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (unit, length) in [("d", D), ("h", H), ("m", M), ("s", S), ("ms", MS)] {
        if nanos >= length && nanos.is_multiple_of(length) {
            return format!("{}{unit}", nanos / length);
        }
    }
    let fraction = format!("{:09}", d.subsec_nanos());
    format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timeout(s: &str) -> Result<Duration, String> {
        parse(s, TIMEOUT)
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(timeout("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(timeout(" 1.5 s "), Ok(Duration::from_millis(1500)));
        assert_eq!(timeout(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(timeout("5."), Ok(Duration::from_secs(5)));
        assert_eq!(timeout("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(timeout("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(timeout("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(timeout("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("2d", MAX_TIME), Ok(Duration::from_secs(2 * DAY)));
        assert_eq!(parse("0.5d", MAX_TIME), Ok(Duration::from_secs(12 * HOUR)));
        assert_eq!(
            parse("1.000000001s", MAX_TIME),
            Ok(Duration::new(1, 1)),
            "exact to the nanosecond"
        );
        assert_eq!(
            parse("1.0000000019s", MAX_TIME),
            Ok(Duration::new(1, 1)),
            "rounded down past it"
        );
    }

    #[test]
    fn refusals_say_what_and_the_bound() {
        for bad in [
            "",
            "fast",
            "5 parsecs",
            "-1s",
            "1e3s",
            "..s",
            ".s",
            "1.2.3s",
            "s",
        ] {
            assert_eq!(
                timeout(bad),
                Err(format!(
                    "`{bad}` is not a duration (expected a number and a unit: 500ms, 2s, 1.5m, 1h, 2d)"
                )),
            );
        }
        assert_eq!(
            parse("1000000d", MAX_TIME),
            Err("`1000000d` is too long for --max-time: the longest accepted is 30d".into())
        );
        assert_eq!(
            parse("31d", WATCH),
            Err("`31d` is too long for --watch: the longest accepted is 30d".into())
        );
        assert_eq!(
            timeout("61m"),
            Err("`61m` is too long for --timeout: the longest accepted is 1h".into())
        );
        let huge = format!("{}d", "9".repeat(60));
        assert_eq!(
            parse(&huge, SERVE_MAX_TIME),
            Err(format!(
                "`{huge}` is too long for --max-time: the longest accepted is 1h"
            ))
        );
        for short in ["0", "0s", "0.0000000001s", "0.0001s"] {
            assert_eq!(
                timeout(short),
                Err(format!(
                    "`{short}` is too short for --timeout: the shortest accepted is 1ms"
                ))
            );
        }
        assert_eq!(
            parse("50ms", MAX_TIME),
            Err("`50ms` is too short for --max-time: the shortest accepted is 100ms".into())
        );
        assert_eq!(
            parse("100ms", WATCH),
            Err("`100ms` is too short for --watch: the shortest accepted is 1s".into())
        );
        assert_eq!(
            parse("0.2s", SERVE_MAX_TIME),
            Err("`0.2s` is too short for --max-time: the shortest accepted is 500ms".into())
        );
        // Each bound itself is accepted.
        for b in ALL {
            assert_eq!(parse(&show(b.most), b), Ok(b.most));
            assert_eq!(parse(&show(b.least), b), Ok(b.least));
        }
    }

    #[test]
    fn shown_durations() {
        assert_eq!(show(Duration::from_secs(30 * DAY)), "30d");
        assert_eq!(show(Duration::from_secs(HOUR)), "1h");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show(Duration::new(1, 1)), "1.000000001s");
        assert_eq!(show(Duration::from_nanos(5)), "0.000000005s");
    }

    /// The longest of each option is safe for tokio's clock and timers: an
    /// instant that far ahead is made without overflow, and a timer of that
    /// length fires when (paused) time reaches it, not before.
    #[tokio::test(start_paused = true)]
    async fn the_longest_durations_are_safe_for_the_timers() {
        for b in ALL {
            let now = tokio::time::Instant::now();
            assert!(now.checked_add(b.most).is_some());
            let at = now + b.most;
            let sleep = tokio::time::sleep(b.most);
            tokio::pin!(sleep);
            tokio::time::advance(b.most - Duration::from_millis(1)).await;
            assert!(futures::poll!(sleep.as_mut()).is_pending(), "{}", b.option);
            tokio::time::advance(Duration::from_millis(1)).await;
            sleep.await;
            assert!(tokio::time::Instant::now() >= at, "{}", b.option);
            let late = tokio::time::timeout(b.most, std::future::pending::<()>());
            tokio::time::advance(b.most).await;
            assert!(late.await.is_err());
        }
    }

    fn bounds() -> impl Strategy<Value = Bounds> {
        prop::sample::select(ALL.to_vec())
    }

    proptest! {
        /// Whatever the text, the parser returns: a duration within the
        /// bounds, or one of its three one-line refusals naming the text.
        #[test]
        fn any_text_is_a_duration_within_bounds_or_a_refusal(
            s in prop_oneof![
                any::<String>(),
                "[0-9. ]{0,40}(ms|s|m|min|h|d|us|x|)",
                "[0-9]{0,45}\\.?[0-9]{0,45}[smhd]?",
            ],
            b in bounds(),
        ) {
            match parse(&s, b) {
                Ok(d) => prop_assert!(b.least <= d && d <= b.most, "{s:?} gave {d:?}"),
                Err(e) => {
                    prop_assert!(e.starts_with(&format!("`{s}` is ")), "{e}");
                    let why = &e[s.len() + 6..];
                    prop_assert!(
                        why.starts_with("not a duration (expected")
                            || why == format!("too long for {}: the longest accepted is {}", b.option, show(b.most))
                            || why == format!("too short for {}: the shortest accepted is {}", b.option, show(b.least)),
                        "{e}"
                    );
                }
            }
        }

        /// A duration shown by [`show`] reads back as itself; in range it is
        /// accepted, out of it refused as too long or too short.
        #[test]
        fn shown_durations_read_back(
            nanos in prop_oneof![
                0u64..=3_000_000_000_000_000,
                (0u64..=2_592_000_000).prop_map(|ms| ms * 1_000_000),
            ],
            b in bounds(),
        ) {
            let d = Duration::from_nanos(nanos);
            let text = show(d);
            match parse(&text, b) {
                Ok(back) => prop_assert_eq!(back, d),
                Err(e) if d > b.most => prop_assert!(e.contains("too long"), "{e}"),
                Err(e) if d < b.least => prop_assert!(e.contains("too short"), "{e}"),
                Err(e) => prop_assert!(false, "{text} refused: {e}"),
            }
        }

        /// Units agree: N days, N×24 hours, N×1440 minutes and N×86400
        /// seconds are the same duration, or the same refusal's kind.
        #[test]
        fn units_agree(n in 0u64..100, frac in 0u32..1000) {
            let forms = [
                format!("{n}.{frac:03}d"),
                format!("{}.{:03}h", n * 24 + u64::from(frac) * 24 / 1000, (u64::from(frac) * 24) % 1000),
            ];
            let days = parse(&forms[0], MAX_TIME);
            let hours = parse(&forms[1], MAX_TIME);
            prop_assert_eq!(days.is_ok(), hours.is_ok(), "{:?}", forms);
            if let (Ok(d), Ok(h)) = (days, hours) {
                prop_assert_eq!(d, h, "{:?}", forms);
            }
            let whole = [
                format!("{n}d"),
                format!("{}h", n * 24),
                format!("{}m", n * 1440),
                format!("{}s", n * 86_400),
                format!("{}", n * 86_400),
                format!("{}ms", n * 86_400_000),
            ];
            let all: Vec<_> = whole.iter().map(|f| parse(f, MAX_TIME).map_err(|e| e.contains("too long"))).collect();
            prop_assert!(all.windows(2).all(|w| w[0] == w[1]), "{:?} {:?}", whole, all);
        }
    }
}
