#!/usr/bin/env bash
# Where the serving path spends its time under load, on the GPU machine (the device tool):
#   bash scripts/gpu_profile.sh [LEVELS]   (default levels: "100 250 500" paced streams)
# Starts `voxserve serve --backend cuda` under py-spy (sampling every thread, idle included),
# measures one stream's TTFA and then each paced level for PROFILE_LEVEL_S seconds, and returns
# $OUT/profile.tar.gz: loadtest results, /metrics, the server log and py-spy's collapsed stacks
# (summarized by scripts/pyspy_top.py into top.txt). Setup: scripts/gpu_setup.sh.
set -u
levels=${1:-"100 250 500"}
level_s=${PROFILE_LEVEL_S:-12}
res=/tmp/res-profile
rm -rf "$res" && mkdir -p "$res"
trap 'tar czf "$OUT/profile.tar.gz" -C "$res" . 2>/dev/null' EXIT
. scripts/gpu_setup.sh
spy=/tmp/site/bin/py-spy
url=http://127.0.0.1:8123
serve=(python3 -m voxserve serve --backend cuda --device cuda --fallback torch --port 8123 --max-queue 4096
  --no-ui --log-level warning ${PROFILE_SERVE_ARGS:-})
if [ -x "$spy" ] && [ -z "${PROFILE_NO_SPY:-}" ]; then
  "$spy" record --format raw --threads ${PROFILE_SPY_MODE:---idle} --rate 250 --nonblocking -o "$res/stacks.txt" -- "${serve[@]}" \
    >"$res/server.log" 2>&1 &
else
  "${serve[@]}" >"$res/server.log" 2>&1 &
fi
server=$!
for _ in $(seq 1 150); do curl -sf $url/ready >/dev/null && break; kill -0 $server 2>/dev/null || break; sleep 1; done
if ! curl -sf $url/ready; then echo "server did not become ready:"; tail -30 "$res/server.log"; exit 1; fi
echo
timeout 60 python3 -m voxserve loadtest $url -c 1 --unpaced --duration 15 --max-requests 400 \
  --stream-format audio --out "$res/one-stream" 2>&1 | tail -4
# Per-thread CPU of the server every 2 s (top -H): which thread saturates, if any.
pid=$(pgrep -f "voxserve serve" | grep -v "^$server$" | tail -1); pid=${pid:-$server}
top -H -b -d 2 -p "$pid" >"$res/top-threads.txt" 2>&1 &
topper=$!
for c in $levels; do
  timeout 120 python3 -m voxserve loadtest $url -c "$c" --duration "$level_s" --max-requests 100000 \
    --stream-format audio --warmup 0 --out "$res/c$c" 2>&1 | tail -3
done
kill $topper 2>/dev/null
curl -s $url/metrics >"$res/metrics.txt"
nvidia-smi --query-compute-apps=pid,used_memory --format=csv >"$res/apps.csv"
kill -INT $server; wait $server 2>/dev/null
# The server's children: py-spy wrote on exit; stop the real server if py-spy left it running.
pkill -f "voxserve serve" 2>/dev/null; sleep 2
[ -s "$res/stacks.txt" ] && python3 scripts/pyspy_top.py "$res/stacks.txt" >"$res/top.txt" && head -80 "$res/top.txt"
gzip -f "$res/stacks.txt" 2>/dev/null
true
