//! Per-account language and time zone (issue #15, "Per-account language and time zone").
//!
//! The language is the one the console speaks to the account once it is signed in and the one
//! of every e-mail and phone text sent to it; it is first taken from the console's language
//! choice when the account chooses its password at setup (or, for accounts made before, at its
//! first sign-in) and can be changed later. The time zone is the one the console shows times
//! in; the API keeps answering in ISO 8601 / Unix seconds, which need none. Neither is a
//! factor or a contact, so a change needs a full session but no fresh second factor; it is
//! audited as `account.preferences`.

use jiff::tz::TimeZone;

use crate::clock::UnixTime;
use crate::config::MailLanguage;
use crate::error::{Error, Result};
use crate::store::AccountRecord;

use super::audit::Event;
use super::session::Authenticated;
use super::{RequestMeta, Service};

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::preferences as kind;

/// The zone of an account that never chose one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// Longest accepted time zone name (the longest IANA name is about 30 characters).
const MAX_ZONE_LEN: usize = 64;

/// An account's effective preferences: what it chose, else the server's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Language of the console and of everything sent to the account.
    pub language: MailLanguage,
    /// Whether the account (or its setup) chose the language; if not, the console follows the
    /// browser and mail uses the server's `recovery.default_language`.
    pub language_chosen: bool,
    /// IANA time zone name.
    pub time_zone: String,
}

/// `en` or `ja`.
pub fn language_code(l: MailLanguage) -> &'static str {
    match l {
        MailLanguage::En => "en",
        MailLanguage::Ja => "ja",
    }
}

/// Parses a language tag the way the console does (`ja-JP` is Japanese); anything else is
/// refused with one clear message.
pub fn parse_language(s: &str) -> Result<MailLanguage> {
    let primary = s.trim().split(['-', '_']).next().unwrap_or("");
    match primary.to_ascii_lowercase().as_str() {
        "en" => Ok(MailLanguage::En),
        "ja" => Ok(MailLanguage::Ja),
        _ => Err(Error::InvalidInput(
            "language must be \"en\" or \"ja\"".into(),
        )),
    }
}

/// Looks an IANA time zone name up in the bundled time zone database (so that it works the
/// same on hosts without `/usr/share/zoneinfo`); unknown names are refused.
pub fn parse_time_zone(name: &str) -> Result<TimeZone> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_ZONE_LEN || name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "time zone must be an IANA name such as Asia/Tokyo or UTC".into(),
        ));
    }
    TimeZone::get(name).map_err(|_| {
        Error::InvalidInput(format!(
            "unknown time zone {name:?}: use an IANA name such as Asia/Tokyo or UTC"
        ))
    })
}

/// The zone of a stored name; a name that no longer exists in the database (it was valid when
/// stored) falls back to UTC rather than breaking every page.
pub fn zone_or_utc(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// `2026-11-28 18:30 +09:00` in `tz` (`… UTC` in UTC, as the console always showed).
pub fn format_in(tz: &TimeZone, t: UnixTime, with_seconds: bool) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(t) else {
        return t.to_string();
    };
    let z = ts.to_zoned(tz.clone());
    let clock = if with_seconds {
        z.strftime("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        z.strftime("%Y-%m-%d %H:%M").to_string()
    };
    if tz.iana_name() == Some("UTC") || *tz == TimeZone::UTC {
        format!("{clock} UTC")
    } else {
        format!("{clock} {}", z.strftime("%:z"))
    }
}

impl Service {
    /// The account's effective preferences.
    pub async fn preferences(&self, account: &AccountRecord) -> Result<Preferences> {
        let stored = self
            .store()
            .preferences(&account.id)
            .await?
            .unwrap_or_default();
        let chosen = stored
            .language
            .as_deref()
            .and_then(|l| parse_language(l).ok());
        Ok(Preferences {
            language: chosen.unwrap_or(self.policy().mail_language),
            language_chosen: chosen.is_some(),
            time_zone: stored
                .time_zone
                .unwrap_or_else(|| DEFAULT_TIME_ZONE.to_string()),
        })
    }

    /// The language of e-mails and phone texts to `account`: its own, else the server's
    /// default. A store error is logged and the default used, because a security notice in the
    /// wrong language is better than none.
    pub async fn language_for(&self, account: &AccountRecord) -> MailLanguage {
        match self.preferences(account).await {
            Ok(p) => p.language,
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "reading preferences failed");
                self.policy().mail_language
            }
        }
    }

    /// Records the console's language as the account's when it has none yet (at setup and at a
    /// sign-in); a later choice of the user's is never overwritten.
    pub async fn adopt_language(
        &self,
        account: &AccountRecord,
        language: MailLanguage,
        now: UnixTime,
    ) -> Result<()> {
        self.store()
            .init_language(&account.id, language_code(language), now)
            .await?;
        Ok(())
    }

    /// Changes only the account's language (the console's language switcher, in any session
    /// of the account's own), keeping its time zone; audited.
    pub async fn set_language(
        &self,
        account: &AccountRecord,
        language: MailLanguage,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let current = self.preferences(account).await?;
        if current.language_chosen && current.language == language {
            return Ok(());
        }
        self.store()
            .set_preferences(
                &account.id,
                Some(language_code(language)),
                Some(&current.time_zone),
                now,
            )
            .await?;
        let detail = format!(
            "language={} time_zone={}",
            language_code(language),
            current.time_zone
        );
        self.audit(
            now,
            meta,
            Event::own(kind::PREFERENCES, "success", &account.name).detail(&detail),
        )
        .await?;
        Ok(())
    }

    /// Changes the signed-in account's language and time zone (full session). Both are
    /// validated before anything is stored; the change is audited.
    pub async fn set_preferences(
        &self,
        auth: &Authenticated,
        language: &str,
        time_zone: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Preferences> {
        auth.require_full()?;
        let name = auth.account.name.as_str();
        let parsed = parse_language(language).and_then(|l| {
            let tz = parse_time_zone(time_zone)?;
            Ok((l, tz))
        });
        let (lang, tz) = match parsed {
            Ok(v) => v,
            Err(e) => {
                self.audit(now, meta, Event::own(kind::PREFERENCES, "invalid", name))
                    .await?;
                return Err(e);
            }
        };
        // Store the canonical spelling the database knows (`asia/tokyo` → `Asia/Tokyo`).
        let zone_name = tz
            .iana_name()
            .map_or_else(|| time_zone.trim().to_string(), str::to_string);
        self.store()
            .set_preferences(
                &auth.account.id,
                Some(language_code(lang)),
                Some(&zone_name),
                now,
            )
            .await?;
        let detail = format!("language={} time_zone={zone_name}", language_code(lang));
        self.audit(
            now,
            meta,
            Event::own(kind::PREFERENCES, "success", name).detail(&detail),
        )
        .await?;
        Ok(Preferences {
            language: lang,
            language_chosen: true,
            time_zone: zone_name,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn zones_come_from_the_bundled_database() {
        assert!(parse_time_zone("Asia/Tokyo").is_ok());
        assert!(parse_time_zone("UTC").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(parse_time_zone("").is_err());
        assert!(parse_time_zone("Asia/\u{0}Tokyo").is_err());
    }

    #[test]
    fn times_show_the_zone_offset() {
        let t = 1_796_000_000; // 2026-11-30 00:53:20 UTC
        let tokyo = parse_time_zone("Asia/Tokyo").unwrap();
        assert_eq!(format_in(&tokyo, t, false), "2026-11-30 09:53 +09:00");
        assert_eq!(
            format_in(&TimeZone::UTC, t, true),
            "2026-11-30 00:53:20 UTC"
        );
        let ny = parse_time_zone("America/New_York").unwrap();
        assert_eq!(format_in(&ny, t, false), "2026-11-29 19:53 -05:00");
    }

    #[test]
    fn languages() {
        assert_eq!(parse_language("ja-JP").unwrap(), MailLanguage::Ja);
        assert_eq!(parse_language("en").unwrap(), MailLanguage::En);
        assert!(parse_language("fr").is_err());
        assert!(parse_language("").is_err());
    }
}
