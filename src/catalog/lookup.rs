//! Finding a product by the name a person types.
//!
//! Matching ignores case, spaces and punctuation ("os x server" finds
//! "Mac OS X Server" through its alias "OS X Server"), accepts aliases
//! ("ARD", "QTSS"), and accepts an unambiguous beginning of a name
//! ("quicktime"). When nothing matches, the error lists the closest names.

use super::{Catalog, Product};

/// No product answers to a name, or several do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Nothing matched.
    #[error("no product named \"{name}\"{}; run `portprobe products` to list them all", suggest(.closest))]
    NotFound {
        /// What the user typed.
        name: String,
        /// The closest canonical names, best first.
        closest: Vec<String>,
    },
    /// The name is the beginning of several products' names.
    #[error("\"{name}\" could mean {}; give more of the name", .candidates.join(" or "))]
    Ambiguous {
        /// What the user typed.
        name: String,
        /// The products it could mean.
        candidates: Vec<String>,
    },
}

fn suggest(closest: &[String]) -> String {
    if closest.is_empty() {
        String::new()
    } else {
        format!(" (closest: {})", closest.join(", "))
    }
}

/// Lower-case letters and digits only: the form names are compared in.
pub(crate) fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Edit distance between two strings, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Up to `limit` of `names` closest to `query`, best first: names that
/// contain the query or are contained in it come first, then by edit distance
/// when it is small enough to be a plausible misspelling.
pub(crate) fn closest<'a>(
    query: &str,
    names: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<String> {
    let q = normalise(query);
    let mut scored: Vec<(usize, String)> = names
        .filter_map(|name| {
            let n = normalise(name);
            if q.is_empty() || n.is_empty() {
                return None;
            }
            let score = if n.contains(&q) || q.contains(&n) {
                0
            } else {
                let d = distance(&q, &n);
                let allowed = (q.len().max(n.len()) / 3).max(2);
                if d > allowed {
                    return None;
                }
                d
            };
            Some((score, name.to_string()))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(limit).map(|(_, n)| n).collect()
}

impl Catalog {
    /// The product a person means by `name`.
    pub fn find_product(&self, name: &str) -> Result<&Product, LookupError> {
        let key = normalise(name);
        if !key.is_empty() {
            // Names and aliases are unique across products once normalised
            // (checked at load), so at most one product answers exactly.
            if let Some(&i) = self.lookup_names.get(&key) {
                return Ok(&self.products[i]);
            }
            if key.chars().count() >= 3 {
                // The names beginning with `key` sort together, from `key` on.
                let mut starts: Vec<usize> = self
                    .lookup_names
                    .range(key.clone()..)
                    .take_while(|(n, _)| n.starts_with(&key))
                    .map(|(_, &i)| i)
                    .collect();
                starts.sort_unstable();
                starts.dedup();
                match starts.as_slice() {
                    [one] => return Ok(&self.products[*one]),
                    [] => {}
                    many => {
                        return Err(LookupError::Ambiguous {
                            name: name.to_string(),
                            candidates: many
                                .iter()
                                .map(|&i| self.products[i].name.clone())
                                .collect(),
                        });
                    }
                }
            }
        }
        // Suggest canonical names, scoring each product by its best name.
        let mut best: Vec<(usize, &str)> = Vec::new();
        for p in self.products() {
            let all: Vec<&str> = std::iter::once(p.name.as_str())
                .chain(p.aliases.iter().map(String::as_str))
                .collect();
            let hits = closest(name, all.iter().copied(), all.len());
            if let Some(first) = hits.first() {
                let rank = if normalise(first).contains(&key) || key.contains(&normalise(first)) {
                    0
                } else {
                    distance(&key, &normalise(first))
                };
                best.push((rank, p.name.as_str()));
            }
        }
        best.sort();
        Err(LookupError::NotFound {
            name: name.to_string(),
            closest: best
                .into_iter()
                .take(3)
                .map(|(_, n)| n.to_string())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_space_and_punctuation() {
        assert_eq!(normalise("Mac OS X  Server"), "macosxserver");
        assert_eq!(normalise("i-Chat/AV"), "ichatav");
        assert_eq!(normalise(" .-/ "), "");
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("xsan", "xsan"), 0);
    }
}
