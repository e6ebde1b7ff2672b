//! Structured mutation fuzzing of every parser in mamori that reads outside bytes (issue #21).
//!
//! Coverage-guided fuzzers need either a nightly compiler (cargo-fuzz) or an instrumented build
//! chain (afl.rs); this crate runs on the stable toolchain with no tooling: a corpus per target
//! (`corpus/<target>/` plus seeds made by code), a deterministic mutation engine, and a runner
//! that catches panics and times each input. A panic is a bug in the parser's crate (they
//! forbid panicking on input); the input is saved under `crashes/` to become a regression test.
#![forbid(unsafe_code)]

pub mod mutate;
pub mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use targets::{all, Target};

/// One input must be handled within this (debug build, a loaded two-core machine): a parser
/// that takes longer on a small input has a complexity bug an attacker can use.
pub const TIME_BOUND: Duration = Duration::from_secs(10);

/// Where the corpus and crash directories live.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a run of one target found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Inputs run (corpus first, then mutations).
    pub executions: u64,
    /// Inputs that panicked or passed [`TIME_BOUND`], saved under `crashes/`.
    pub findings: Vec<PathBuf>,
    /// The slowest single input.
    pub slowest: Duration,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// The corpus of a target: its directory's files (sorted, for determinism) and its seeds.
pub fn corpus(target: &Target) -> Vec<Vec<u8>> {
    let dir = crate_dir().join("corpus").join(target.name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    out.extend((target.seeds)());
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// Runs one input, catching a panic. `Err` carries the panic message or the time taken.
pub fn run_one(target: &Target, input: &[u8]) -> Result<Duration, String> {
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let took = start.elapsed();
    match result {
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            Err(format!("panic: {msg}"))
        }
        Ok(()) if took > TIME_BOUND => Err(format!("took {took:?}, bound {TIME_BOUND:?}")),
        Ok(()) => Ok(took),
    }
}

/// Saves a finding as `crashes/<target>-<hash>` and returns its path.
fn save_finding(target: &Target, input: &[u8]) -> PathBuf {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(input);
    let name = format!(
        "{}-{}",
        target.name,
        hash.iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let dir = crate_dir().join("crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("cannot save {}: {e}", path.display());
    }
    path
}

/// Fuzzes `target`: every corpus input once, then mutations until `iterations` inputs in total
/// have run or `deadline` passes. Deterministic for a given `seed` and corpus (the deadline
/// only shortens the sequence).
pub fn fuzz(target: &Target, iterations: u64, seed: u64, deadline: Option<Instant>) -> Outcome {
    let start = Instant::now();
    let corpus = corpus(target);
    let mut rng = StdRng::seed_from_u64(seed ^ fnv(target.name));
    let mut out = Outcome::default();
    // Inputs under the bound but slow enough to look into are kept when asked for
    // (`MAMORI_FUZZ_SLOW_MS`), without failing the run.
    let slow_ms: Option<u128> = std::env::var("MAMORI_FUZZ_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let record = |out: &mut Outcome, input: &[u8]| {
        out.executions += 1;
        match run_one(target, input) {
            Ok(took) => {
                if slow_ms.is_some_and(|ms| took.as_millis() >= ms) {
                    let path = save_finding(target, input);
                    eprintln!("SLOW {} ({took:?}): {}", target.name, path.display());
                }
                out.slowest = out.slowest.max(took)
            }
            Err(why) => {
                let path = save_finding(target, input);
                eprintln!("FINDING {}: {why}: {}", target.name, path.display());
                out.findings.push(path);
            }
        }
    };
    for input in &corpus {
        record(&mut out, input);
    }
    while out.executions < iterations && deadline.is_none_or(|d| Instant::now() < d) {
        let base = &corpus[rng.gen_range(0..corpus.len())];
        let input = mutate::mutate(&mut rng, base, &corpus, target.text);
        record(&mut out, &input);
    }
    out.elapsed = start.elapsed();
    out
}

/// Runs a saved input against a target (for regression tests and reproducing a finding).
pub fn replay(target_name: &str, path: &Path) -> Result<Duration, String> {
    let target = all()
        .into_iter()
        .find(|t| t.name == target_name)
        .ok_or_else(|| format!("no target {target_name}"))?;
    let input = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    run_one(&target, &input)
}

/// A stable hash of the target name, so each target gets its own mutation sequence from one
/// seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
