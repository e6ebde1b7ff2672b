#!/usr/bin/env bash
# RADIUS benchmark (docs/performance.md, "RADIUS"): accepted Access-Requests per second from a
# code-only client (the password checked elsewhere), each carrying a correct, unused code, sent
# by FreeRADIUS's radclient with PACKETS in flight. A release mamori-server on SQLite on
# loopback, USERS seeded users with devices (examples/load.rs).
#
# Usage: scripts/load/radius.sh [USERS] [REQUESTS]   (defaults 1000 and 3000)
# Env:   PARALLEL (radclient -p, default 64), NO_BUILD (skip the release build)
# Only loopback is contacted; the run is bounded by its request count.
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${1:-1000}
REQUESTS=${2:-3000}
PARALLEL=${PARALLEL:-64}
SECRET=radius-benchmark-shared-secret

[ -n "${NO_BUILD:-}" ] || cargo build --release -p mamori-server --bin mamori-server --example load
BIN=target/release/mamori-server
LOAD=target/release/examples/load
dir=$(mktemp -d)
trap 'kill -TERM $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '%s\n' "$SECRET" > "$dir/secret"
cat > "$dir/mamori.toml" <<TOML
[radius]
listen = "127.0.0.1:$port"
max_in_flight = 1024
[[radius.clients]]
name = "bench"
address = "127.0.0.1"
secret_file = "$dir/secret"
mode = "code_only"
requests_per_minute = 100000000
TOML
MAMORI_CONFIG="$dir/mamori.toml" MAMORI_LOG=warn \
    "$BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" >"$dir/out" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$dir/out" 2>/dev/null && break; sleep 0.1; done
"$LOAD" seed --data-dir "$dir" --users "$USERS" >/dev/null
"$LOAD" bodies --users "$USERS" --requests "$REQUESTS" --out "$dir/bodies"
# One radclient packet per body, blank-line separated.
python3 - "$dir/bodies" "$dir/packets" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        b = json.loads(line)
        out.write(f'User-Name = "{b["user"]}", User-Password = "{b["code"]}", Message-Authenticator = 0x00\n\n')
PY
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks); s0=$(date +%s.%N)
radclient -q -s -p "$PARALLEL" -r 3 -t 5 -f "$dir/packets" -D /usr/share/freeradius -d /usr/share/freeradius \
    "127.0.0.1:$port" auth "$SECRET" > "$dir/summary" 2>&1 || true
s1=$(date +%s.%N); t1=$(ticks)
python3 - "$dir/summary" "$s0" "$s1" "$t0" "$t1" "$(getconf CLK_TCK)" "$USERS" "$REQUESTS" "$PARALLEL" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
def count(word):
    m = re.search(word + r"\s*:\s*(\d+)", text)
    return int(m.group(1)) if m else None
secs = float(sys.argv[3]) - float(sys.argv[2])
# radclient -s prints "Accepted : N", "Rejected : N", "Lost : N".
accepted = count("Accepted") or 0
cpu = (int(sys.argv[5]) - int(sys.argv[4])) / int(sys.argv[6])
print(json.dumps({"kind": "radius_code_only", "users": int(sys.argv[7]), "requests": int(sys.argv[8]),
    "parallel": int(sys.argv[9]), "accepted": accepted, "rejected": count("Rejected"),
    "lost": count("Lost"), "seconds": round(secs, 2), "accepted_per_s": round(accepted / secs),
    "server_cpu_us_per_request": round(cpu * 1e6 / max(int(sys.argv[8]), 1)),
    "loadavg_1m": float(open("/proc/loadavg").read().split()[0])}))
PY
