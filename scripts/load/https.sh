#!/usr/bin/env bash
# HTTPS benchmark (docs/performance.md, "Built-in HTTPS", #22): accepted validations per second
# over plain HTTP and over the server's own TLS, both with keep-alive (wrk, scripts/load/
# validate.lua), and new connections per second (every request on a new connection:
# `Connection: close` on GET /healthz), which over TLS is new TLS handshakes per second. A
# release mamori-server on SQLite on loopback, USERS seeded users; the certificate is a
# self-signed ECDSA P-256 one made here with openssl.
#
# Usage: scripts/load/https.sh [USERS]   (default 1000)
# Env:   CONCURRENCY (default 32), WRK_THREADS (default 1), SECS (handshake runs, default 8),
#        NO_BUILD (skip the release build)
# Only loopback is contacted; every run is bounded by its request count or SECS.
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${1:-1000}
CONCURRENCY=${CONCURRENCY:-32}
WRK_THREADS=${WRK_THREADS:-1}
SECS=${SECS:-8}
[ -n "${NO_BUILD:-}" ] || cargo build --release -p mamori-server --bin mamori-server --example load
BIN=target/release/mamori-server
LOAD=target/release/examples/load
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
report() { # mode kind pid ticks_before json
    python3 -c 'import json,sys; r=json.loads(sys.argv[3]); t=(int(sys.argv[5])-int(sys.argv[4]))/int(sys.argv[6]); r={"transport":sys.argv[1],"measure":sys.argv[2],**r}; r["server_cpu_us_per_request"]=round(t*1e6/max(r["requests"],1)); r["loadavg_1m"]=float(open("/proc/loadavg").read().split()[0]); print(json.dumps(r))' \
        "$1" "$2" "$5" "$4" "$(ticks "$3")" "$(getconf CLK_TCK)"
}
certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$certs/key.pem" -out "$certs/cert.pem" 2>/dev/null

for mode in http https; do
    dir=$(mktemp -d)
    tls=()
    [ "$mode" = https ] && tls=(env MAMORI_TLS_CERT_FILE="$certs/cert.pem" MAMORI_TLS_KEY_FILE="$certs/key.pem")
    MAMORI_LIMITS_VALIDATE_PER_MINUTE=10000000 MAMORI_LIMITS_VALIDATE_BURST=1000000 MAMORI_LOG=warn \
        "${tls[@]}" "$BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" >"$dir/out" 2>"$dir/log" &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on ' "$dir/out" 2>/dev/null && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$dir/out")
    key=$("$LOAD" seed --data-dir "$dir" --users "$USERS")
    requests=$((3 * USERS))
    wrk -t 1 -c "$CONCURRENCY" -d 2s -s scripts/load/warmup.lua "$addr" -- "$key" >/dev/null
    "$LOAD" bodies --users "$USERS" --requests "$requests" --out "$dir/bodies"
    secs=$((requests / 1500 + 2)); [ "$secs" -gt 19 ] && secs=19
    t0=$(ticks "$pid")
    line=$(wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${secs}s" --latency -s scripts/load/validate.lua \
        "$addr" -- "$dir/bodies" "$key" "$WRK_THREADS" "$USERS" "$CONCURRENCY" | grep '^{')
    report "$mode" keep_alive_validations "$pid" "$t0" "$line"
    # New connections: wrk reconnects after every `Connection: close` answer.
    t0=$(ticks "$pid")
    out=$(wrk -t "$WRK_THREADS" -c "$CONCURRENCY" -d "${SECS}s" --latency -H "Connection: close" "$addr/healthz")
    python3 - "$out" > "$dir/conn.json" <<'PY'
import json, re, sys
t = sys.argv[1]
req = int(re.search(r"(\d+) requests in", t).group(1))
rps = float(re.search(r"Requests/sec:\s*([\d.]+)", t).group(1))
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
errs = re.search(r"Socket errors: (.*)", t)
print(json.dumps({"requests": req, "connections_per_second": round(rps),
                  "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else None,
                  "socket_errors": errs.group(1) if errs else "none"}))
PY
    report "$mode" new_connections "$pid" "$t0" "$(cat "$dir/conn.json")"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir"
done
