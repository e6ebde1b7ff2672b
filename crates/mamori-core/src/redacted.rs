//! Secrets redacted by type (#16): a stored secret — a password hash, a sealed OTP seed, a code
//! hash, a ceremony's state — is held in a [`Redacted`], whose `Debug` prints `[redacted]`. A
//! record type can then derive `Debug`, and a secret field added later cannot be printed by a
//! log line or an error message by accident: it has to be a `Redacted` to be stored at all
//! (the store's row mapping builds them), and reading it is a visible [`Redacted::expose`].

use std::fmt;

/// A value that is never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Redacted<T> {
        Redacted(value)
    }

    /// The secret itself, for the code that must use it (hashing, unsealing, binding to SQL).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The secret itself, by value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Redacted<T> {
        Redacted(value)
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Redacted;

    #[derive(Debug)]
    #[allow(dead_code)] // read only through Debug
    struct Row {
        name: String,
        hash: Redacted<Vec<u8>>,
        maybe: Option<Redacted<String>>,
    }

    #[test]
    fn debug_never_shows_the_value() {
        let r = Row {
            name: "alice".into(),
            hash: Redacted::new(b"s3cr3t-bytes".to_vec()),
            maybe: Some(Redacted::new(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            )),
        };
        let shown = format!("{r:?} {r:#?}");
        assert!(
            shown.contains("alice") && shown.contains("[redacted]"),
            "{shown}"
        );
        for secret in ["s3cr3t", "115, 51", "argon2id", "aGFzaA"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(r.hash.expose(), b"s3cr3t-bytes");
    }
}
