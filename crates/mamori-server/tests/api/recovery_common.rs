//! The recovery tests' SMTP sink and webhook receiver, from the test kit under the name the
//! tests import them by.
#![allow(unused_imports)]

pub use mamori_testkit::mail::{decode_qp, Mail, SmtpSink};
pub use mamori_testkit::six_digits;
pub use mamori_testkit::webhook::{Hook, WebhookReceiver};
