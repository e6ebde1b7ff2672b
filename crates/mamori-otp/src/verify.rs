//! Verification windows and the two-consecutive-codes search.
//!
//! These functions answer "which step (or counter) does this code belong to?" and nothing more.
//! Replay protection (accept only a step later than the last accepted one) and drift bookkeeping
//! are the caller's: the server stores them so that every node sees them.
//!
//! Every candidate in the window is computed and compared in constant time, and the loop does not
//! stop at the first match, so the time taken does not reveal where (or whether) a code matched.

use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater};

use crate::{Code, Generator, OtpError, OtpKind};

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The TOTP time step or HOTP counter that produced the code. Store it: only a later one may
    /// be accepted next time (RFC 6238 section 5.2, NIST SP 800-63B section 5.1.4.2).
    pub step: u64,
    /// For TOTP, `step` minus the current step (the device clock's offset in steps). For HOTP,
    /// how far ahead of the expected counter the code was.
    pub offset: i64,
}

/// The result of a successful two-consecutive-codes search (enrollment or resync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsecutiveMatch {
    /// The step (or counter) of the *second* code: the last one used.
    pub last_step: u64,
    /// TOTP: `last_step` minus the current step, the drift to remember. HOTP: how many counter
    /// values were skipped before the first code.
    pub drift: i64,
}

/// Saturating `base + delta` on the u64 step line.
fn offset_step(base: u64, delta: i64) -> u64 {
    if delta >= 0 {
        base.saturating_add(delta.unsigned_abs())
    } else {
        base.saturating_sub(delta.unsigned_abs())
    }
}

fn diff(a: u64, b: u64) -> i64 {
    // Steps are at most 2^64/1 but realistic windows are tiny; saturate rather than wrap.
    i64::try_from(i128::from(a) - i128::from(b)).unwrap_or(if a > b { i64::MAX } else { i64::MIN })
}

impl Generator {
    fn check_shape(&self, code: &str) -> Result<Code, OtpError> {
        self.normalise_input(code)
            .ok_or_else(|| OtpError::MalformedCode {
                expected: self.code_shape(),
            })
    }

    /// Constant-time: does `code` equal the code for `step`?
    fn matches(&self, code: &Code, step: u64) -> subtle::Choice {
        self.at_counter(step)
            .as_str()
            .as_bytes()
            .ct_eq(code.as_str().as_bytes())
    }

    /// Searches `first..=last` for the smallest step whose code matches, comparing every candidate.
    fn search(&self, code: &Code, first: u64, last: u64) -> Option<u64> {
        let mut found = subtle::Choice::from(0);
        let mut step = 0u64;
        let mut s = first;
        loop {
            let hit = self.matches(code, s) & !found;
            step = u64::conditional_select(&step, &s, hit);
            found |= hit;
            if s >= last {
                break;
            }
            s += 1;
        }
        bool::from(found).then_some(step)
    }

    /// Verifies a time-based code at `unix_time`.
    ///
    /// The expected step is the current step plus `drift` (the device's remembered clock offset);
    /// steps within `window` of it either side are accepted. Steps at or before `last_step` (the
    /// last accepted one) are never considered, which both refuses a replay and prefers a later
    /// step when two steps happen to share a code.
    pub fn verify_time(
        &self,
        code: &str,
        unix_time: u64,
        drift: i64,
        window: u64,
        last_step: Option<u64>,
    ) -> Result<Verification, OtpError> {
        if !self.params().kind.is_time_based() {
            return Err(OtpError::UnsupportedType(OtpKind::Hotp.as_str().into()));
        }
        let code = self.check_shape(code)?;
        let now = self.step_at(unix_time);
        let expected = offset_step(now, drift);
        let mut first = expected.saturating_sub(window);
        let last = expected.saturating_add(window);
        if let Some(used) = last_step {
            if used >= last {
                return Err(OtpError::NoMatch);
            }
            first = first.max(used + 1);
        }
        let step = self.search(&code, first, last).ok_or(OtpError::NoMatch)?;
        Ok(Verification {
            step,
            offset: diff(step, now),
        })
    }

    /// Verifies an HOTP code whose expected counter is `counter`, looking up to `look_ahead`
    /// values ahead (RFC 4226 section 7.4, the resynchronization parameter s). On success the next
    /// expected counter is `step + 1`.
    pub fn verify_counter(
        &self,
        code: &str,
        counter: u64,
        look_ahead: u64,
    ) -> Result<Verification, OtpError> {
        let code = self.check_shape(code)?;
        let last = counter.saturating_add(look_ahead);
        let step = self.search(&code, counter, last).ok_or(OtpError::NoMatch)?;
        Ok(Verification {
            step,
            offset: diff(step, counter),
        })
    }

    /// Finds two consecutive time steps `s`, `s + 1` within `window` steps of now where `code1`
    /// matches `s` and `code2` matches `s + 1`: what a user types when asked for "two consecutive
    /// codes" to enroll or resync a device. Returns the step of the second code and the drift.
    ///
    /// Two codes that are each valid in the window but not for consecutive steps (for example
    /// the same code typed twice, or the second code typed after waiting too long) give
    /// [`OtpError::NotConsecutive`], so the user can be told what to do differently.
    pub fn find_consecutive_time(
        &self,
        code1: &str,
        code2: &str,
        unix_time: u64,
        window: u64,
    ) -> Result<ConsecutiveMatch, OtpError> {
        if !self.params().kind.is_time_based() {
            return Err(OtpError::UnsupportedType(OtpKind::Hotp.as_str().into()));
        }
        let now = self.step_at(unix_time);
        let first = now.saturating_sub(window);
        let last = now.saturating_add(window);
        let found = self.consecutive(code1, code2, first, last)?;
        Ok(ConsecutiveMatch {
            last_step: found,
            drift: diff(found, now),
        })
    }

    /// The HOTP version of [`Generator::find_consecutive_time`]: counters `c`, `c + 1` with
    /// `counter <= c <= counter + look_ahead`. On success the next expected counter is
    /// `last_step + 1`.
    pub fn find_consecutive_counter(
        &self,
        code1: &str,
        code2: &str,
        counter: u64,
        look_ahead: u64,
    ) -> Result<ConsecutiveMatch, OtpError> {
        let last = counter.saturating_add(look_ahead);
        let found = self.consecutive(code1, code2, counter, last)?;
        Ok(ConsecutiveMatch {
            last_step: found,
            drift: diff(found, counter.saturating_add(1)),
        })
    }

    /// Returns the step of the second code of the first consecutive pair in `first..=last`.
    fn consecutive(
        &self,
        code1: &str,
        code2: &str,
        first: u64,
        last: u64,
    ) -> Result<u64, OtpError> {
        let c1 = self.check_shape(code1)?;
        let c2 = self.check_shape(code2)?;
        // Compute each code in first..=last+1 once; compare both inputs against each.
        let mut prev_is_c1 = subtle::Choice::from(0);
        let mut found = subtle::Choice::from(0);
        let mut any1 = subtle::Choice::from(0);
        let mut any2 = subtle::Choice::from(0);
        let mut second = 0u64;
        let mut s = first;
        let end = last.saturating_add(1);
        loop {
            let code = self.at_counter(s);
            let is_c1 = code.as_str().as_bytes().ct_eq(c1.as_str().as_bytes());
            let is_c2 = code.as_str().as_bytes().ct_eq(c2.as_str().as_bytes());
            // s > first: only a pair that starts inside the window counts.
            let pair = prev_is_c1 & is_c2 & s.ct_gt(&first) & !found;
            second = u64::conditional_select(&second, &s, pair);
            found |= pair;
            if s < end {
                any1 |= is_c1;
            }
            any2 |= is_c2;
            prev_is_c1 = is_c1;
            if s >= end {
                break;
            }
            s += 1;
        }
        if bool::from(found) {
            Ok(second)
        } else if bool::from(any1 & any2) {
            Err(OtpError::NotConsecutive)
        } else {
            Err(OtpError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OtpParams, Secret};

    fn gen(params: OtpParams) -> Generator {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        match secret.and_then(|s| Generator::new(&s, params)) {
            Ok(g) => g,
            Err(e) => unreachable!("test generator: {e}"),
        }
    }

    #[test]
    fn time_window_and_offset() {
        let g = gen(OtpParams::totp());
        let now = 1_700_000_000u64;
        let step = g.step_at(now);
        for d in -1i64..=1 {
            let code = g.at_counter(offset_step(step, d));
            let v = g.verify_time(code.as_str(), now, 0, 1, None);
            assert_eq!(v.map(|v| v.offset), Ok(d));
        }
        let far = g.at_counter(step + 2);
        assert_eq!(
            g.verify_time(far.as_str(), now, 0, 1, None),
            Err(OtpError::NoMatch)
        );
        // With a remembered drift of +2 the same code passes.
        assert_eq!(
            g.verify_time(far.as_str(), now, 2, 1, None).map(|v| v.step),
            Ok(step + 2)
        );
    }

    #[test]
    fn last_step_blocks_replay() {
        let g = gen(OtpParams::totp());
        let now = 1_700_000_000u64;
        let step = g.step_at(now);
        let code = g.at_counter(step);
        assert_eq!(
            g.verify_time(code.as_str(), now, 0, 1, Some(step)),
            Err(OtpError::NoMatch)
        );
        assert_eq!(
            g.verify_time(code.as_str(), now, 0, 1, Some(step - 1))
                .map(|v| v.step),
            Ok(step)
        );
        assert_eq!(
            g.verify_time(code.as_str(), now, 0, 1, Some(step + 5)),
            Err(OtpError::NoMatch)
        );
    }

    #[test]
    fn malformed_codes_are_named() {
        let g = gen(OtpParams::totp());
        let err = g.verify_time("12345", 0, 0, 1, None);
        assert_eq!(
            err,
            Err(OtpError::MalformedCode {
                expected: "6 digits".into()
            })
        );
        assert!(g.verify_time("12a456", 0, 0, 1, None).is_err());
        // spaces are fine
        let code = g.at_time(59);
        let spaced = format!("{} {}", &code.as_str()[..3], &code.as_str()[3..]);
        assert!(g.verify_time(&spaced, 59, 0, 0, None).is_ok());
    }

    #[test]
    fn consecutive_codes_find_drift() {
        let g = gen(OtpParams::totp());
        let now = 1_700_000_000u64;
        let step = g.step_at(now);
        // code1 may be anywhere in now±10, so the second code reaches now-9 ..= now+11.
        for d in [-9i64, -3, 0, 4, 11] {
            let s = offset_step(step, d);
            let (c1, c2) = (g.at_counter(s - 1), g.at_counter(s));
            let m = g.find_consecutive_time(c1.as_str(), c2.as_str(), now, 10);
            assert_eq!(
                m,
                Ok(ConsecutiveMatch {
                    last_step: s,
                    drift: d
                }),
                "d={d}"
            );
        }
    }

    #[test]
    fn non_consecutive_codes_are_refused_with_their_own_error() {
        let g = gen(OtpParams::totp());
        let now = 1_700_000_000u64;
        let step = g.step_at(now);
        let (a, b) = (g.at_counter(step - 2), g.at_counter(step));
        assert_eq!(
            g.find_consecutive_time(a.as_str(), b.as_str(), now, 10),
            Err(OtpError::NotConsecutive)
        );
        // The same code twice.
        assert_eq!(
            g.find_consecutive_time(b.as_str(), b.as_str(), now, 10),
            Err(OtpError::NotConsecutive)
        );
        // Reversed order.
        let c = g.at_counter(step - 1);
        assert_eq!(
            g.find_consecutive_time(b.as_str(), c.as_str(), now, 10),
            Err(OtpError::NotConsecutive)
        );
        // Outside the window.
        let (x, y) = (g.at_counter(step + 20), g.at_counter(step + 21));
        assert_eq!(
            g.find_consecutive_time(x.as_str(), y.as_str(), now, 10),
            Err(OtpError::NoMatch)
        );
    }

    #[test]
    fn hotp_look_ahead_and_consecutive() {
        let g = gen(OtpParams::hotp(0));
        let c5 = g.at_counter(5);
        assert_eq!(g.verify_counter(c5.as_str(), 3, 5).map(|v| v.step), Ok(5));
        assert_eq!(g.verify_counter(c5.as_str(), 3, 1), Err(OtpError::NoMatch));
        assert_eq!(g.verify_counter(c5.as_str(), 6, 10), Err(OtpError::NoMatch));
        let (a, b) = (g.at_counter(7), g.at_counter(8));
        assert_eq!(
            g.find_consecutive_counter(a.as_str(), b.as_str(), 2, 20),
            Ok(ConsecutiveMatch {
                last_step: 8,
                drift: 5
            })
        );
        let b2 = g.at_counter(9);
        assert_eq!(
            g.find_consecutive_counter(a.as_str(), b2.as_str(), 2, 20),
            Err(OtpError::NotConsecutive)
        );
    }

    #[test]
    fn edges_of_the_step_line_do_not_overflow() {
        let g = gen(OtpParams::hotp(u64::MAX - 1));
        let c = g.at_counter(u64::MAX);
        assert_eq!(
            g.verify_counter(c.as_str(), u64::MAX - 1, 10)
                .map(|v| v.step),
            Ok(u64::MAX)
        );
        let t = gen(OtpParams::totp());
        let c0 = t.at_counter(0);
        assert_eq!(
            t.verify_time(c0.as_str(), 0, -5, 1, None).map(|v| v.step),
            Ok(0)
        );
    }
}
