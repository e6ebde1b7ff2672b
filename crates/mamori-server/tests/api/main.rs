//! mamori-server's tests of the real binary over HTTP (SQLite and PostgreSQL), one test binary for all (issue #16: one link per change, not twenty).

mod common;
mod recovery_common;

mod account_hardening;
mod admin_cli;
mod at_rest;
mod authorization_matrix;
mod backup;
mod contacts_change;
mod db_faults;
mod defaults;
mod delivery;
mod delivery_admin;
mod edge_hardening;
mod forward_auth;
mod forward_auth_browser;
mod forward_auth_proxies;
mod guess_limits;
mod http_story;
mod multi_node;
mod node_faults;
// #17 the OpenID provider
mod oidc;
mod oidc_admin;
mod oidc_apache;
mod oidc_consent;
mod polish_http;
mod radius;
mod recovery_admin;
mod recovery_codes;
mod recovery_contacts;
mod recovery_signin;
mod review_http;
mod sigterm;
mod soak;
mod sync_api;
mod tls;
mod tls_browser;
// #22 ACME against Pebble
mod acme;
mod tokens_api;
// #19: the PAM module's no_device = allow
mod validate_status;
mod webauthn_api;
