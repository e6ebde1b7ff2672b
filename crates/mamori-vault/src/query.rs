//! Finding an entry by what a person types: part of the issuer or account name.

use crate::{Entry, Vault, VaultError};

impl Vault {
    /// Every entry whose issuer or account contains `query` (case-insensitive), or all entries
    /// for an empty query.
    pub fn filter(&self, query: &str) -> Vec<&Entry> {
        let q = query.trim().to_lowercase();
        self.entries()
            .iter()
            .filter(|e| q.is_empty() || matches(e, &q))
            .collect()
    }

    /// The single entry `query` names.
    ///
    /// Rules, in order: an entry id; an exact (case-insensitive) issuer, account or
    /// "issuer:account" that names exactly one entry; otherwise the substring matches must be
    /// exactly one. No match gives [`VaultError::NoMatch`] with the nearest names; several give
    /// [`VaultError::Ambiguous`] listing them.
    pub fn find(&self, query: &str) -> Result<&Entry, VaultError> {
        let q = query.trim().to_lowercase();
        if let Ok(id) = uuid::Uuid::parse_str(&q) {
            if let Some(e) = self.get(id) {
                return Ok(e);
            }
        }
        let exact: Vec<&Entry> = self
            .entries()
            .iter()
            .filter(|e| {
                let i = e.issuer.to_lowercase();
                let a = e.account.to_lowercase();
                q == i || q == a || q == format!("{i}:{a}") || q == e.display_name().to_lowercase()
            })
            .collect();
        if let [one] = exact.as_slice() {
            return Ok(one);
        }
        let subs = self.filter(&q);
        match subs.as_slice() {
            [one] => Ok(one),
            [] => Err(VaultError::NoMatch {
                query: query.to_string(),
                nearest: self.nearest(&q, 3),
            }),
            many => Err(VaultError::Ambiguous {
                query: query.to_string(),
                candidates: many.iter().map(|e| e.display_name()).collect(),
            }),
        }
    }

    /// Up to `n` display names closest to `query` by edit distance (for "did you mean").
    pub fn nearest(&self, query: &str, n: usize) -> Vec<String> {
        let q = query.trim().to_lowercase();
        let limit = (q.chars().count() / 2).max(2);
        let mut scored: Vec<(usize, String)> = self
            .entries()
            .iter()
            .filter_map(|e| {
                let d = [e.issuer.to_lowercase(), e.account.to_lowercase()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| levenshtein(&q, s))
                    .min()?;
                (d <= limit).then(|| (d, e.display_name()))
            })
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(n).map(|(_, name)| name).collect()
    }
}

fn matches(e: &Entry, q: &str) -> bool {
    e.issuer.to_lowercase().contains(q) || e.account.to_lowercase().contains(q)
}

/// Edit distance over characters (insert, delete, substitute), two-row dynamic programming.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        let mut left = i + 1;
        let mut diag = i;
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(left);
        for (j, cb) in b.iter().enumerate() {
            let up = prev.get(j + 1).copied().unwrap_or(usize::MAX);
            let cost = usize::from(ca != *cb);
            let v = (diag + cost).min(left + 1).min(up.saturating_add(1));
            row.push(v);
            diag = up;
            left = v;
        }
        cur.clear();
        cur.extend(row);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::levenshtein;

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("github", "github"), 0);
        assert_eq!(levenshtein("gihtub", "github"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
