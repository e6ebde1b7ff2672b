//! mamori-formats' integration tests in one binary (#16): other apps' formats, round trips, secretstream, properties, and fixtures from independent tools (real_tools).

mod common;

mod formats;
mod properties;
mod real_tools;
mod roundtrip;
mod secretstream;
