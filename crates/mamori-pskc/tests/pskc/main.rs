//! mamori-pskc's integration tests in one binary (#16): RFC 6030 examples, interop fixtures, refusals, CSV, generated files, properties.

mod common;

mod csv;
mod errors;
mod generated;
mod interop;
mod properties;
mod rfc6030;
