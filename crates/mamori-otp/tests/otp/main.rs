//! mamori-otp's integration tests in one binary (#16): published vectors, URIs, QR codes, migration payloads, properties.

mod migration;
mod properties;
mod qr;
mod uri;
mod vectors;
