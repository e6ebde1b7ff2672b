//! Tests of the domain in-process on a fixed clock (no server process): a real SQLite file, a real server key.

mod domain_common;
mod recovery_common;

mod domain_rules;
// #17 the OpenID provider
mod oidc_domain;
mod recovery_signin_domain;
mod sync_domain;
mod webauthn_domain;
