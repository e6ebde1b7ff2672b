//! The web console's tests: HTTP forms against the real binary, and headless Chromium through chromedriver (one chromedriver per test, on a free port).

mod console_common;
mod recovery_common;

mod console_audit;
mod console_browser;
mod console_http;
mod console_polish;
mod console_recovery;
mod console_recovery_signin;
mod console_recovery_wait;
mod console_review;
mod console_root_story;
mod tokens_console;
mod webauthn_console;
