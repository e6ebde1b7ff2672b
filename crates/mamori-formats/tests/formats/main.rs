//! mamori-formats' integration tests in one binary (#16): other apps' formats, round trips, secretstream, properties.

mod common;

mod formats;
mod properties;
mod roundtrip;
mod secretstream;
