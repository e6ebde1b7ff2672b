//! Message catalogs: `i18n/en.toml` and `i18n/ja.toml`, compiled into the binary, flattened to
//! dotted keys (`[sign_in] title = "…"` is `sign_in.title`). Templates and handlers look
//! strings up with `tr.t("key")` (or `tr.tf("key", &[("name", value)])` for `{name}`
//! placeholders); the unit tests below fail when a key is missing from either catalog or when
//! a template or handler uses a key that no catalog has.
//!
//! The language comes from the `mamori_lang` cookie (set by the switcher), else from
//! `Accept-Language` (RFC 9110 section 12.5.4, highest q-value first), else English.

use std::collections::HashMap;
use std::sync::LazyLock;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Japanese.
    Ja,
}

/// Name of the language cookie.
pub const LANG_COOKIE: &str = "mamori_lang";

impl Lang {
    /// Every language, in the switcher's order.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ja];

    /// The BCP 47 tag.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// The language's own name (for the switcher).
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ja => "日本語",
        }
    }

    /// Parses a tag's primary subtag (`ja-JP` is Japanese).
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// Picks the language from the cookie value and the `Accept-Language` header.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::parse) {
            return l;
        }
        let Some(header) = accept_language else {
            return Lang::En;
        };
        let mut best: Option<(u32, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            // q is a number 0..1 with up to 3 decimals; compare it in thousandths.
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, |v| {
                    v.trim()
                        .parse::<f32>()
                        .map_or(0, |f| (f.clamp(0.0, 1.0) * 1000.0) as u32)
                });
            if q == 0 {
                continue;
            }
            if let Some(l) = Lang::parse(tag) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

type Catalog = HashMap<String, String>;

fn flatten(prefix: &str, v: &toml::Value, out: &mut Catalog) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Parses a catalog file's text.
pub fn parse_catalog(text: &str) -> Result<Catalog, toml::de::Error> {
    let v: toml::Value = toml::from_str(text)?;
    let mut out = Catalog::new();
    flatten("", &v, &mut out);
    Ok(out)
}

const EN_TEXT: &str = include_str!("../../i18n/en.toml");
const JA_TEXT: &str = include_str!("../../i18n/ja.toml");

// A catalog that does not parse shows keys instead of text; the tests make sure both parse.
static EN: LazyLock<Catalog> = LazyLock::new(|| parse_catalog(EN_TEXT).unwrap_or_default());
static JA: LazyLock<Catalog> = LazyLock::new(|| parse_catalog(JA_TEXT).unwrap_or_default());

/// The strings of one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    lang: Lang,
}

impl Tr {
    /// The translator for `lang`.
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The language.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    fn catalog(&self) -> &'static Catalog {
        match self.lang {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }

    /// The string for `key`; English if this language lacks it, the key itself if both do.
    pub fn t(&self, key: &str) -> String {
        self.catalog()
            .get(key)
            .or_else(|| EN.get(key))
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// The string for `key` with `{name}` placeholders replaced.
    pub fn tf(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.t(key);
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn keys(c: &Catalog) -> BTreeSet<String> {
        c.keys().cloned().collect()
    }

    #[test]
    fn both_catalogs_parse_and_have_the_same_keys() {
        let en = parse_catalog(EN_TEXT).expect("i18n/en.toml parses");
        let ja = parse_catalog(JA_TEXT).expect("i18n/ja.toml parses");
        let (ek, jk) = (keys(&en), keys(&ja));
        let missing_ja: Vec<_> = ek.difference(&jk).collect();
        let missing_en: Vec<_> = jk.difference(&ek).collect();
        assert!(
            missing_ja.is_empty(),
            "missing from ja.toml: {missing_ja:?}"
        );
        assert!(
            missing_en.is_empty(),
            "missing from en.toml: {missing_en:?}"
        );
        for (k, v) in &ja {
            assert!(!v.trim().is_empty(), "empty Japanese string for {k}");
            // Placeholders must match, or a value would silently vanish in one language.
            let ph = |s: &str| {
                s.split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
                    .collect::<BTreeSet<_>>()
            };
            assert_eq!(ph(v), ph(&en[k]), "placeholders differ for {k}");
        }
    }

    /// Every `.t("key")` / `.tf("key"` in the templates and console sources.
    fn used_keys() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src/console"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = e.unwrap().path();
                // This file's own tests use made-up keys on purpose.
                if !path.ends_with("i18n.rs") {
                    files.push(path);
                }
            }
        }
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for pat in [".t(\"", ".tf(\""] {
                for (i, _) in text.match_indices(pat) {
                    let rest = &text[i + pat.len()..];
                    let key = rest.split('"').next().unwrap();
                    out.push((f.display().to_string(), key.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn every_key_used_by_a_template_or_handler_exists() {
        let en = parse_catalog(EN_TEXT).unwrap();
        let used = used_keys();
        assert!(
            used.len() > 100,
            "the scan found too few keys: {}",
            used.len()
        );
        let unknown: Vec<_> = used.iter().filter(|(_, k)| !en.contains_key(k)).collect();
        assert!(unknown.is_empty(), "unknown keys: {unknown:?}");
    }

    #[test]
    fn a_missing_key_is_detected() {
        // The check above is only worth something if it can fail.
        let en = parse_catalog("[a]\nb = \"x\"\n").unwrap();
        assert!(en.contains_key("a.b"));
        assert!(!en.contains_key("a.c"));
    }

    #[test]
    fn language_negotiation() {
        assert_eq!(Lang::negotiate(None, None), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("ja")), Lang::Ja);
        assert_eq!(
            Lang::negotiate(None, Some("ja-JP,ja;q=0.9,en;q=0.8")),
            Lang::Ja
        );
        assert_eq!(
            Lang::negotiate(None, Some("fr,en;q=0.5,ja;q=0.7")),
            Lang::Ja
        );
        assert_eq!(Lang::negotiate(None, Some("fr,de")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("ja;q=0,en")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en"), Some("ja")), Lang::En);
        assert_eq!(Lang::negotiate(Some("ja"), None), Lang::Ja);
        assert_eq!(Lang::negotiate(Some("xx"), Some("ja")), Lang::Ja);
    }

    #[test]
    fn placeholders_are_filled() {
        let tr = Tr::new(Lang::En);
        let s = tr.tf("dashboard.signed_in_as", &[("user", "alice")]);
        assert!(s.contains("alice") && !s.contains("{user}"), "{s}");
        assert_eq!(tr.t("no.such.key"), "no.such.key");
    }
}
