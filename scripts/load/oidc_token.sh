#!/usr/bin/env bash
# OpenID provider benchmark (docs/performance.md, "OpenID provider", #17): authorization codes
# redeemed per second at POST /oidc/token (client_secret_basic, the code's single-use UPDATE, the
# grant and tokens written, the ID token signed), p99 and server CPU per redemption, against a
# release mamori-server on SQLite (or PostgreSQL) on loopback, for each ALGS value (ES256, the
# default, and RS256).
#
# The codes are issued beforehand through the service (`load oidc-codes`, as the authorization
# endpoint issues them) and live 60 seconds, so each run redeems them at once, for SECS seconds;
# CODES must be more than a run redeems (a run that runs out is refused).
#
# Cost growth: ROUNDS > 1 repeats the issue-and-redeem run against the same server and database,
# so each round starts with the grants and tokens of the rounds before it (about 20,000 grants
# and 40,000 tokens a round); one JSON line per round, with "round" and the grants stored before it.
#
# Usage: scripts/load/oidc_token.sh [sqlite|postgres] [CODES]   (defaults sqlite, 40000)
# Env:   SECS (default 10), CONCURRENCY (default 32), WRK_THREADS (default 2), ALGS (default "ES256 RS256"),
#        SESSIONS (default 100), ROUNDS (default 1), NO_BUILD (skip the release build),
#        MAMORI_TEST_PG (admin URL, default postgres://postgres@127.0.0.1:5432/test)
# Only loopback addresses are contacted; each run is bounded by SECS.
set -euo pipefail
cd "$(dirname "$0")/../.."
BACKEND=${1:-sqlite}
CODES=${2:-40000}
SECS=${SECS:-10}
CONCURRENCY=${CONCURRENCY:-32}
WRK_THREADS=${WRK_THREADS:-2}
ALGS=${ALGS:-ES256 RS256}
SESSIONS=${SESSIONS:-100}
ROUNDS=${ROUNDS:-1}
PG_ADMIN=${MAMORI_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}

[ -n "${NO_BUILD:-}" ] || cargo build --release -p mamori-server --bin mamori-server --example load
BIN=target/release/mamori-server
LOAD=target/release/examples/load
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Grants stored so far (read beside the running server; SQLite's WAL mode allows it).
count_grants() {
    if [ -n "$2" ]; then psql "${PG_ADMIN%/*}/$2" -tAc "SELECT count(*) FROM oidc_grants"
    else sqlite3 "$1/mamori.db" "SELECT count(*) FROM oidc_grants"; fi
}

for alg in $ALGS; do
    dir=$(mktemp -d)
    db_args=(); db_name=""
    if [ "$BACKEND" = postgres ]; then
        db_name="mamori_oidc_$RANDOM$RANDOM"
        psql "$PG_ADMIN" -qc "CREATE DATABASE $db_name"
        db_args=(--database "${PG_ADMIN%/*}/$db_name")
    fi
    MAMORI_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" "${db_args[@]}" >"$dir/out" 2>"$dir/log" &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on ' "$dir/out" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$dir/out")
    "$LOAD" seed --data-dir "$dir" "${db_args[@]}" --users "$SESSIONS" >/dev/null
    # Warm-up: a small batch (connections, pools, the signing key made and cached).
    creds=$("$LOAD" oidc-codes --data-dir "$dir" "${db_args[@]}" --sessions "$SESSIONS" --codes 2000 --alg "$alg" --out "$dir/warm")
    basic=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["basic"])' "$creds")
    wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d 2s -s scripts/load/oidc_token.lua "$addr" -- "$dir/warm" "$basic" "$WRK_THREADS" >/dev/null
    for round in $(seq "$ROUNDS"); do
        grants=$(count_grants "$dir" "$db_name")
        t_gen=$(date +%s.%N)
        creds=$("$LOAD" oidc-codes --data-dir "$dir" "${db_args[@]}" --sessions "$SESSIONS" --codes "$CODES" --alg "$alg" --out "$dir/bodies")
        gen_secs=$(python3 -c "import time; print(round(time.time() - $t_gen, 1))")
        basic=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["basic"])' "$creds")
        t0=$(ticks "$pid")
        line=$(wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${SECS}s" --latency -s scripts/load/oidc_token.lua \
            "$addr" -- "$dir/bodies" "$basic" "$WRK_THREADS" | grep '^{')
        t1=$(ticks "$pid")
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); t=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]); r={"backend":sys.argv[5],"alg":sys.argv[6],"round":int(sys.argv[9]),"grants_before":int(sys.argv[10]),"codes_issued_in_s":float(sys.argv[7]),**r}; r["server_cpu_us_per_request"]=round(t*1e6/max(r["requests"],1)); r["loadavg_1m"]=float(open("/proc/loadavg").read().split()[0]); print(json.dumps(r)); sys.exit(1 if r["other"] > 2 * int(sys.argv[8]) else 0)' \
            "$line" "$t0" "$t1" "$(getconf CLK_TCK)" "$BACKEND" "$alg" "$gen_secs" "$CONCURRENCY" "$round" "$grants" ||
            echo "the run used up its codes (\"other\" above): give more CODES" >&2
    done
    kill -TERM "$pid"; wait "$pid" || true
    [ -n "$db_name" ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)"
    rm -rf "$dir"
done
