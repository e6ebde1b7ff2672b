#!/usr/bin/env bash
# Coverage-guided fuzzing of every mamori-fuzz target with libFuzzer through cargo-fuzz, on the
# stable toolchain (#21). Not run in CI (CI runs `cargo test -p mamori-fuzz --test short`).
#
#   cargo install cargo-fuzz            # once
#   scripts/fuzz-coverage.sh [SECONDS_PER_TARGET] [TARGET...]   # default 50 s, every target
#
# cargo-fuzz passes sanitizer and coverage flags that are nightly features; RUSTC_BOOTSTRAP=1
# makes the stable compiler accept them. The harnesses (crates/mamori-fuzz/coverage) call the
# same per-target functions as the structured fuzzer and start from its corpus (the corpus
# directories plus the seeds made by code, written by `mamori-fuzz --write-corpus`). The
# corpus libFuzzer grows is kept in crates/mamori-fuzz/coverage/work/corpus/<target> (not
# committed); a crash or timeout is saved as crates/mamori-fuzz/crashes/<target>-crash-<hash>
# (or -timeout-/-oom-) and the script exits non-zero. Each target's executions are printed,
# and the total at the end.
set -euo pipefail

secs="${1:-50}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cov="$root/crates/mamori-fuzz/coverage"
work="$cov/work"
crashes="$root/crates/mamori-fuzz/crashes"
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 2; }

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' "$cov/Cargo.toml" | grep -v '^mamori-fuzz-coverage$')
fi

# Seeds: every corpus file and every seed made by code.
rm -rf "$work/seeds"
(cd "$root" && cargo run -q -p mamori-fuzz -- --write-corpus "$work/seeds")
mkdir -p "$crashes"

(cd "$root" && cargo fuzz build --fuzz-dir "$cov" -O)

total=0
found=0
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t"
    log="$work/$t.log"
    status=0
    # -timeout: an input slower than the structured fuzzer's bound (10 s) is a finding too.
    (cd "$root" && cargo fuzz run --fuzz-dir "$cov" -O "$t" "$work/corpus/$t" "$work/seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashes/$t-") >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    runs=${runs:-0}
    cov_line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    total=$((total + runs))
    if [ "$status" -ne 0 ]; then
        found=$((found + 1))
        echo "$t: $runs executions, FINDING (exit $status), see $log"
    else
        echo "$t: $runs executions, ${cov_line:-no coverage line}, no finding"
    fi
done
echo "total: $total executions in ${#targets[@]} targets (${secs} s each), $found with findings"
[ "$found" -eq 0 ]
