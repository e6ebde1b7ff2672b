#!/usr/bin/env bash
# Whole-process timings of the `mamori` binary (docs/performance.md, "Authenticator vault").
# Needs hyperfine (Debian package `hyperfine`). Run from the workspace root:
#   bash crates/mamori-vault/benches/whole-process.sh
set -euo pipefail
cargo build --release -p mamori-cli -p mamori-vault --example make_vault >/dev/null
M="$PWD/target/release/mamori"
MAKE="$PWD/target/release/examples/make_vault"
work=$(mktemp -d)
trap '"$M" lock >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export XDG_RUNTIME_DIR="$work/run"; mkdir -m 700 "$XDG_RUNTIME_DIR"
echo "bench password" >"$work/pw"

# hyperfine, then the median from its JSON export.
bench() {
  local name=$1; shift
  hyperfine -N --export-json "$work/h.json" "$@" | grep -E "Time|Range"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("  median: %.1f ms" % (r["median"]*1000))' "$work/h.json"
}

# A default-parameter vault (m=64 MiB, t=3, p=1) with 10,000 accounts.
"$MAKE" "$work/big.mamori" "bench password" 10000
export MAMORI_VAULT="$work/big.mamori"

echo "== password unlock (Argon2id default) + decrypt + list of 10,000 entries, no agent"
MAMORI_PASSWORD_FILE="$work/pw" bench unlock --warmup 1 --runs 10 "$M list"

MAMORI_PASSWORD_FILE="$work/pw" "$M" unlock --timeout 10m
echo "== with the agent: list of 10,000 entries"
bench list --warmup 3 --runs 30 "$M list"
echo "== with the agent: mamori code QUERY in a 10,000-entry vault"
bench code-big --warmup 3 --runs 50 "$M code user4242@"

# A small everyday vault (20 accounts).
"$M" lock
echo "== without the agent (password file, Argon2id default): mamori code QUERY in a 20-entry vault"
"$MAKE" "$work/small.mamori" "bench password" 20
export MAMORI_VAULT="$work/small.mamori"
MAMORI_PASSWORD_FILE="$work/pw" bench code-small-pw --warmup 1 --runs 10 "$M code user7@"
MAMORI_PASSWORD_FILE="$work/pw" "$M" unlock --timeout 10m
echo "== with the agent: mamori code QUERY in a 20-entry vault"
bench code-small --warmup 3 --runs 100 "$M code user7@"
