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

/// The source of a file without its comments (lines starting with `//`, and the rest of a line
/// after ` // `), so that a doc comment naming a module is not a dependency on it.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        out.push_str(line.split(" // ").next().unwrap_or(""));
        out.push('\n');
    }
    // Unit tests may reach across modules; the rule is about the code that ships.
    match out.find("#[cfg(test)]\nmod tests") {
        Some(i) => out[..i].to_string(),
        None => out,
    }
}

/// Which of `modules` the code refers to, by any of `prefixes` (`super::`, `crate::domain::`),
/// including inside `use prefix::{a, b::c}` groups.
fn references(code: &str, prefixes: &[&str], modules: &[String]) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for prefix in prefixes {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                group
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or(""))
                    .collect()
            } else {
                vec![rest
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")]
            };
            for n in names {
                if modules.iter().any(|m| m == n) {
                    found.insert(n.to_string());
                }
            }
        }
    }
    found.into_iter().collect()
}

/// The modules of a directory: each `NAME.rs` (but `mod.rs`) and each `NAME/` with a `mod.rs`,
/// with the files that make it up.
fn modules_of(dir: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() && path.join("mod.rs").exists() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            out.push((name, files));
        } else if path.extension().is_some_and(|e| e == "rs")
            && !["mod", "lib", "main"].contains(&name.as_str())
        {
            out.push((name, vec![path]));
        }
    }
    out.sort();
    out
}

/// A cycle in the graph, if there is one (depth-first search).
fn find_cycle(graph: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &[(String, Vec<String>)],
        state: &mut std::collections::HashMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(1) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        let edges = graph
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, e)| e.clone())
            .unwrap_or_default();
        for next in edges {
            if let Some(c) = visit(&next, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = std::collections::HashMap::new();
    for (node, _) in graph {
        if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// The import graph of the modules in `dir`, as referred to by `prefixes`.
fn graph_of(dir: &Path, prefixes: &[&str]) -> Vec<(String, Vec<String>)> {
    let modules = modules_of(dir);
    let names: Vec<String> = modules.iter().map(|(n, _)| n.clone()).collect();
    modules
        .iter()
        .map(|(name, files)| {
            let mut edges = std::collections::BTreeSet::new();
            for f in files {
                for r in references(&code_of(f), prefixes, &names) {
                    if &r != name {
                        edges.insert(r);
                    }
                }
            }
            (name.clone(), edges.into_iter().collect())
        })
        .collect()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// No module imports another that imports it back, directly or around a ring: in the domain,
/// the store, the server crate's top level, and inside its JSON API and console. Types that two
/// modules share live in a third both import (`domain::session`, `domain::transport`,
/// `audit::kind`, `mamori_server::web`).
#[test]
fn no_module_cycles() {
    let ws = workspace();
    let cases: [(&str, &[&str]); 5] = [
        (
            "crates/mamori-core/src/domain",
            &["super::", "crate::domain::"],
        ),
        (
            "crates/mamori-core/src/store",
            &["super::", "crate::store::"],
        ),
        ("crates/mamori-server/src", &["crate::"]),
        (
            "crates/mamori-server/src/http",
            &["super::", "crate::http::"],
        ),
        (
            "crates/mamori-server/src/console",
            &["super::", "crate::console::"],
        ),
    ];
    for (dir, prefixes) in cases {
        let graph = graph_of(&ws.join(dir), prefixes);
        assert!(graph.len() > 3, "{dir}: modules found: {graph:?}");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{dir}: import cycle {}", cycle.join(" -> "));
        }
    }
}

/// The checker sees a cycle where there is one (so that `no_module_cycles` can fail).
#[test]
fn the_cycle_finder_finds_cycles() {
    let g = |edges: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        edges
            .iter()
            .map(|(n, e)| (n.to_string(), e.iter().map(|s| s.to_string()).collect()))
            .collect()
    };
    assert_eq!(
        find_cycle(&g(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_cycle(&g(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])])),
        None
    );
    let names = vec!["signin".to_string(), "notify".to_string()];
    assert_eq!(
        references(
            "use super::{notify::Email, signin};\n",
            &["super::"],
            &names
        ),
        vec!["notify".to_string(), "signin".to_string()]
    );
}

/// The server crate's edges (JSON API, console, admin command line, start-up) reach the data
/// only through `Service`, whose methods hold the rules (session expiry, audit visibility,
/// factor changes); and they read the time only from the injected `Clock` (`AppState::clock`),
/// which the tests replace. The JSON API and the console share `web`, never each other.
#[test]
fn the_edges_reach_neither_the_store_nor_the_system_clock() {
    let ws = workspace();
    let mut files = Vec::new();
    rust_files(&ws.join("crates/mamori-server/src"), &mut files);
    assert!(files.len() > 20, "{files:?}");
    let mut found = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&ws).unwrap_or(file).display().to_string();
        let code = code_of(file);
        let mut forbid = vec![
            ".store()",
            "SystemTime::now",
            "Timestamp::now",
            "Zoned::now",
            "Utc::now",
        ];
        if rel.contains("/src/console/") || rel.contains("/src/web/") {
            forbid.push("crate::http");
        }
        if rel.contains("/src/http/") || rel.contains("/src/web/") {
            forbid.push("crate::console");
        }
        for (n, line) in code.lines().enumerate() {
            for f in &forbid {
                if line.contains(f) {
                    found.push(format!("{rel}:{}: {f}", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "edges reaching past the domain:\n{}",
        found.join("\n")
    );
}
