//! Tidy tests (in the manner of rust-analyzer's): architecture rules of docs/ARCHITECTURE.md
//! that the compiler cannot check, checked by reading the source.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The domain decides; it does no I/O of its own. Files, sockets, SMTP and HTTP clients live
/// at the edge (`mamori-server`'s `delivery.rs`, `seed_file.rs`) behind the domain's traits,
/// and the store's SQL behind the `Store` trait. `Cargo.toml` already keeps lettre and reqwest
/// out of this crate; this test also keeps the standard library's I/O out of `domain/`.
#[test]
fn the_domain_does_no_io_of_its_own() {
    const FORBIDDEN: [&str; 8] = [
        "std::fs",
        "tokio::fs",
        "std::net",
        "tokio::net",
        "reqwest",
        "lettre",
        "sqlx",
        "std::process",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() > 20, "the domain's files were found: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in FORBIDDEN {
                if code.contains(f) {
                    found.push(format!("{}:{}: {f}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O in the domain (move it to the edge behind a trait):\n{}",
        found.join("\n")
    );
}

/// The core knows no edge: no HTTP server, template engine or command-line parser in its
/// dependencies (the compiler then refuses any use of them).
#[test]
fn the_core_depends_on_no_edge_crate() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    for edge in [
        "axum", "askama", "clap", "hyper", "tower", "lettre", "reqwest",
    ] {
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with(edge)),
            "mamori-core depends on {edge}"
        );
    }
}
