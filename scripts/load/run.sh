#!/usr/bin/env bash
# Load benchmark of the account service (docs/performance.md, "## Server").
#
# For each backend (SQLite file, PostgreSQL database) and each population (1,000 and 100,000
# users) it starts a release `mamori-server` on 127.0.0.1:0 with a fresh data directory, seeds
# users with enabled virtual devices, then measures over loopback HTTP:
#   - validations (POST /api/v1/validate): each request carries a correct, unused code, so every
#     request that the rules let through is an accepted validation;
#   - password sign-ins (POST /api/v1/sign-in, Argon2id m=19 MiB t=2 p=1);
# and, without HTTP, the raw Argon2id verification rate on both cores.
# Results: one JSON line per run in $OUT (default target/load-results.jsonl).
#
# Usage: scripts/load/run.sh [sqlite|postgres|all] [USERS...]
# Env:   MAMORI_TEST_PG (admin URL, default postgres://postgres@127.0.0.1:5432/test),
#        CONCURRENCY (default 32), SIGNIN_REQUESTS (default 200), VALIDATE_REQUESTS (default 60000),
#        DRIVER (wrk or load; default wrk when installed), WRK_THREADS (default 1),
#        NO_BUILD (set: skip the release build and use the binaries already in target/release)
# Only loopback addresses are contacted; every run is bounded by its request count.
set -euo pipefail
cd "$(dirname "$0")/../.."

WHICH=${1:-all}
shift || true
POPULATIONS=("$@")
[ ${#POPULATIONS[@]} -eq 0 ] && POPULATIONS=(1000 100000)
CONCURRENCY=${CONCURRENCY:-32}
SIGNIN_REQUESTS=${SIGNIN_REQUESTS:-200}
VALIDATE_REQUESTS=${VALIDATE_REQUESTS:-60000}
PG_ADMIN=${MAMORI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}
OUT=${OUT:-target/load-results.jsonl}
# Validation driver: wrk with scripts/load/validate.lua when installed, else the Rust generator.
DRIVER=${DRIVER:-$(command -v wrk >/dev/null && echo wrk || echo load)}
WRK_THREADS=${WRK_THREADS:-1}

[ -n "${NO_BUILD:-}" ] || cargo build --release -p mamori-server --bin mamori-server --example load
BIN=target/release/mamori-server
LOAD=target/release/examples/load
: > "$OUT"

"$LOAD" argon2 --hashes 40 --threads 2 | tee -a "$OUT"

cpu_ticks() { # pid -> utime+stime in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# Appends the server's CPU time per request to a result line (robust against other load on the
# machine, which skews requests/s).
with_cpu() { # backend pid ticks_before
    local line ticks_after hz
    read -r line
    ticks_after=$(cpu_ticks "$2")
    hz=$(getconf CLK_TCK)
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r={"backend":sys.argv[2],**r}; t=(int(sys.argv[4])-int(sys.argv[3]))/int(sys.argv[5]); r["server_cpu_s"]=round(t,3); r["server_cpu_us_per_request"]=round(t*1e6/max(r["requests"],1)); r["loadavg_1m"]=float(open("/proc/loadavg").read().split()[0]); print(json.dumps(r))' "$line" "$1" "$3" "$ticks_after" "$hz"
}

run_one() { # backend users
    local backend=$1 users=$2 dir db_url="" db_name="" pid addr key
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        db_name="mamori_load_$RANDOM$RANDOM"
        psql "$PG_ADMIN" -qc "CREATE DATABASE $db_name"
        db_url="${PG_ADMIN%/*}/$db_name"
    fi
    local db_args=()
    [ -n "$db_url" ] && db_args=(--database "$db_url")
    # The load comes from one address: lift the per-address limits of sign-in and validate.
    MAMORI_LIMITS_SIGN_IN_PER_MINUTE=10000000 MAMORI_LIMITS_SIGN_IN_BURST=1000000 \
    MAMORI_LIMITS_VALIDATE_PER_MINUTE=10000000 MAMORI_LIMITS_VALIDATE_BURST=1000000 MAMORI_LOG=warn \
        "$BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" "${db_args[@]}" >"$dir/out" 2>"$dir/log" &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on ' "$dir/out" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$dir/out")
    key=$("$LOAD" seed --data-dir "$dir" "${db_args[@]}" --users "$users")
    local requests=$((3 * users < VALIDATE_REQUESTS ? 3 * users : VALIDATE_REQUESTS))
    local before
    if [ "$DRIVER" = wrk ]; then
        # wrk (C, epoll) costs the shared cores far less per request than the Rust generator.
        wrk -t 1 -c "$CONCURRENCY" -d 2s -s scripts/load/warmup.lua "$addr" -- "$key" >/dev/null
        "$LOAD" bodies --users "$users" --requests "$requests" --out "$dir/bodies"
        local secs=$((requests / 1500 + 2)); [ "$secs" -gt 19 ] && secs=19
        before=$(cpu_ticks "$pid")
        wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${secs}s" --latency -s scripts/load/validate.lua \
            "$addr" -- "$dir/bodies" "$key" "$WRK_THREADS" "$users" "$CONCURRENCY" \
            | grep '^{' | with_cpu "$backend" "$pid" "$before" | tee -a "$OUT"
    else
        before=$(cpu_ticks "$pid")
        "$LOAD" validate --url "$addr" --key "$key" --users "$users" --requests "$requests" \
            --concurrency "$CONCURRENCY" | with_cpu "$backend" "$pid" "$before" | tee -a "$OUT"
    fi
    before=$(cpu_ticks "$pid")
    "$LOAD" sign-in --url "$addr" --users "$users" --requests "$SIGNIN_REQUESTS" --concurrency 8 \
        | with_cpu "$backend" "$pid" "$before" | tee -a "$OUT"
    kill -TERM "$pid"; wait "$pid" || true
    [ -n "$db_name" ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)"
    rm -rf "$dir"
}

for backend in sqlite postgres; do
    [ "$WHICH" = all ] || [ "$WHICH" = "$backend" ] || continue
    for users in "${POPULATIONS[@]}"; do run_one "$backend" "$users"; done
done
echo "results in $OUT"
