//! `mamori-fuzz [--target NAME] [--iterations N] [--seed S] [--minutes M]`: long fuzz runs.
//! With `--minutes`, the time is shared equally between the targets run.
//!
//! `mamori-fuzz --write-corpus DIR [--target NAME]` writes each target's corpus (its directory's
//! files and the seeds made by code) as `DIR/<target>/seed-NNNN`, for the coverage-guided
//! harnesses in `coverage/` (`scripts/fuzz-coverage.sh`), and runs nothing.

use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut target: Option<String> = None;
    let mut iterations: u64 = 10_000;
    let mut seed: u64 = 21;
    let mut minutes: Option<f64> = None;
    let mut write_corpus: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let parsed = match (a.as_str(), value.as_deref()) {
            ("--target", Some(v)) => {
                target = Some(v.to_string());
                true
            }
            ("--iterations", Some(v)) => v.parse().map(|n| iterations = n).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|n| seed = n).is_ok(),
            ("--minutes", Some(v)) => v.parse().map(|n| minutes = Some(n)).is_ok(),
            ("--write-corpus", Some(v)) => {
                write_corpus = Some(v.into());
                true
            }
            _ => false,
        };
        if !parsed {
            eprintln!(
                "usage: mamori-fuzz [--target NAME] [--iterations N] [--seed S] [--minutes M] \
                 | --write-corpus DIR [--target NAME]"
            );
            return ExitCode::from(2);
        }
    }
    let targets: Vec<_> = mamori_fuzz::all()
        .into_iter()
        .filter(|t| target.as_deref().is_none_or(|n| n == t.name))
        .collect();
    if targets.is_empty() {
        let names: Vec<_> = mamori_fuzz::all().iter().map(|t| t.name).collect();
        eprintln!("no such target; targets: {}", names.join(", "));
        return ExitCode::from(2);
    }
    if let Some(dir) = write_corpus {
        return match write_corpora(&dir, &targets) {
            Ok(n) => {
                println!("{n} corpus files written under {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mamori-fuzz: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // With a time budget the iteration count is no limit.
    let share = minutes.map(|m| Duration::from_secs_f64(m * 60.0 / targets.len() as f64));
    let mut total = 0;
    let mut findings = 0;
    for t in &targets {
        let deadline = share.map(|s| Instant::now() + s);
        let n = if share.is_some() {
            u64::MAX
        } else {
            iterations
        };
        let o = mamori_fuzz::fuzz(t, n, seed, deadline);
        println!(
            "{:<24} {:>10} executions in {:>8.1?} (slowest input {:?}), {} findings",
            t.name,
            o.executions,
            o.elapsed,
            o.slowest,
            o.findings.len()
        );
        for f in &o.findings {
            println!("  finding: {}", f.display());
        }
        total += o.executions;
        findings += o.findings.len();
    }
    println!("total: {total} executions, {findings} findings (seed {seed})");
    if findings > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes every target's corpus as `dir/<target>/seed-NNNN`; returns the number of files.
fn write_corpora(dir: &std::path::Path, targets: &[mamori_fuzz::Target]) -> Result<usize, String> {
    let mut n = 0;
    for t in targets {
        let sub = dir.join(t.name);
        std::fs::create_dir_all(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
        for (i, input) in mamori_fuzz::corpus(t).iter().enumerate() {
            let path = sub.join(format!("seed-{i:04}"));
            std::fs::write(&path, input).map_err(|e| format!("{}: {e}", path.display()))?;
            n += 1;
        }
    }
    Ok(n)
}
