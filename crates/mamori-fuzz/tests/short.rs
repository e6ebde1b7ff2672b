//! The CI fuzz run: every target, a fixed seed, a fixed number of executions (about half a
//! minute in a debug build). Long runs: `cargo run --release -p mamori-fuzz -- --minutes 30`.

/// Executions per cost unit: a target of cost 1 gets this many, a cost-4 target a quarter.
const SHORT_ITERATIONS: u64 = 2_000;
const SEED: u64 = 21;

#[test]
fn every_target_survives_the_short_run() {
    let mut findings = Vec::new();
    let mut total = 0;
    for t in mamori_fuzz::all() {
        let n = (SHORT_ITERATIONS / u64::from(t.cost)).max(20);
        let o = mamori_fuzz::fuzz(&t, n, SEED, None);
        eprintln!(
            "{:<24} {:>6} executions in {:>7.1?}, slowest {:?}, {} findings",
            t.name,
            o.executions,
            o.elapsed,
            o.slowest,
            o.findings.len()
        );
        total += o.executions;
        findings.extend(o.findings);
    }
    eprintln!("total {total} executions");
    assert!(
        findings.is_empty(),
        "inputs that panicked or hung: {findings:?}"
    );
}

#[test]
fn every_target_has_a_corpus() {
    for t in mamori_fuzz::all() {
        let c = mamori_fuzz::corpus(&t);
        assert!(
            c.iter().any(|i| !i.is_empty()),
            "target {} has no non-empty seed",
            t.name
        );
    }
}
