#!/usr/bin/env bash
# Forward-auth benchmark (docs/performance.md, "Forward authentication", #18): allowed checks per
# second, p99 and server CPU per check of GET /api/v1/forward-auth as nginx sends it, each with
# the single-sign-on cookie of one of SESSIONS signed-in sessions (round robin), against a
# release mamori-server on SQLite (or PostgreSQL) on loopback, for each CACHE value of
# `[forward_auth] cache_secs` (2, the default, and 0: every check reads the database).
#
# Usage: scripts/load/forward_auth.sh [sqlite|postgres] [SESSIONS]   (defaults sqlite, 1000)
# Env:   SECS (wrk duration, default 10), CONCURRENCY (default 32), WRK_THREADS (default 1),
#        CACHES (default "2 0"), NO_BUILD (skip the release build),
#        MAMORI_TEST_PG (admin URL, default postgres://postgres@127.0.0.1:5432/test)
# Only loopback addresses are contacted; each run is bounded by SECS.
set -euo pipefail
cd "$(dirname "$0")/../.."
BACKEND=${1:-sqlite}
SESSIONS=${2:-1000}
SECS=${SECS:-10}
CONCURRENCY=${CONCURRENCY:-32}
WRK_THREADS=${WRK_THREADS:-1}
CACHES=${CACHES:-2 0}
PG_ADMIN=${MAMORI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}

[ -n "${NO_BUILD:-}" ] || cargo build --release -p mamori-server --bin mamori-server --example load
BIN=target/release/mamori-server
LOAD=target/release/examples/load
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for cache in $CACHES; do
    dir=$(mktemp -d)
    db_args=(); db_name=""
    if [ "$BACKEND" = postgres ]; then
        db_name="mamori_fwd_$RANDOM$RANDOM"
        psql "$PG_ADMIN" -qc "CREATE DATABASE $db_name"
        db_args=(--database "${PG_ADMIN%/*}/$db_name")
    fi
    cat > "$dir/mamori.toml" <<TOML
[forward_auth]
cache_secs = $cache
[[forward_auth.rules]]
host = "app.bench.test"
policy = "two_factor"
TOML
    MAMORI_CONFIG="$dir/mamori.toml" MAMORI_LOG=warn \
        "$BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" "${db_args[@]}" >"$dir/out" 2>"$dir/log" &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on ' "$dir/out" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$dir/out")
    "$LOAD" seed --data-dir "$dir" "${db_args[@]}" --users "$SESSIONS" >/dev/null
    "$LOAD" fwd-tokens --data-dir "$dir" "${db_args[@]}" --sessions "$SESSIONS" --out "$dir/tokens"
    # Warm-up (connections, the server's pools and caches), then the measured run.
    wrk -t 1 -c "$CONCURRENCY" -d 2s -s scripts/load/forward_auth.lua "$addr" -- "$dir/tokens" "$CONCURRENCY" >/dev/null
    t0=$(ticks "$pid")
    line=$(wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${SECS}s" --latency -s scripts/load/forward_auth.lua \
        "$addr" -- "$dir/tokens" "$CONCURRENCY" | grep '^{')
    t1=$(ticks "$pid")
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); t=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]); r={"backend":sys.argv[5],"cache_secs":int(sys.argv[6]),**r}; r["server_cpu_us_per_request"]=round(t*1e6/max(r["requests"],1)); r["loadavg_1m"]=float(open("/proc/loadavg").read().split()[0]); print(json.dumps(r))' \
        "$line" "$t0" "$t1" "$(getconf CLK_TCK)" "$BACKEND" "$cache"
    kill -TERM "$pid"; wait "$pid" || true
    [ -n "$db_name" ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)"
    rm -rf "$dir"
done
