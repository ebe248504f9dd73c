#!/usr/bin/env bash
# Sizing run for docs/benchmarks/sizing.md, on the GPU machine (the device tool), from the repository root:
#   bash scripts/gpu_sizing.sh load [h100|h200]   -> one-stream TTFA, capacity curve (loadtest --search), memory
#   bash scripts/gpu_sizing.sh bench [h100|h200]  -> offline throughput and torch peak memory (voxserve bench)
# Each mode fits in one 10-minute device command. The GPU name is read from nvidia-smi when not given.
# Setup is scripts/gpu_bench.sh's: .whl/ (cp312 wheels the GPU image lacks) and .vxhome/baker.tar.xz.
# Results come back as $OUT/sizing-<gpu>-<mode>.tar.gz (a run directory); `load` also leaves a table
# without the bench figures in $OUT/<gpu>.json. On this machine, after both modes:
#   mkdir -p docs/benchmarks/sizing/<gpu>-run && tar xzf <files_at>/sizing-<gpu>-load.tar.gz -C docs/benchmarks/sizing/<gpu>-run
#   tar xzf <files_at>/sizing-<gpu>-bench.tar.gz -C docs/benchmarks/sizing/<gpu>-run
#   python -m voxserve.scale.sizing_report table docs/benchmarks/sizing/<gpu>-run --gpu <gpu> \
#       --measured YYYY-MM-DD --out docs/benchmarks/sizing/<gpu>.json
#   python -m voxserve.scale.sizing_report report
# Knobs (environment): SIZING_SLO_MS (150), SIZING_LEVEL_S (15 s per load level), SIZING_MAX_CONC (1024),
# SIZING_SERVE_ARGS (extra `voxserve serve` flags, e.g. "--workers 2"), SIZING_MAX_REQUESTS (per level;
# 100000, so the level's duration ends it: loadtest's own default of 1000 cut high levels short).
set -u
mode=${1:?load or bench}
gpu=${2:-}
slo=${SIZING_SLO_MS:-150}
level_s=${SIZING_LEVEL_S:-15}
max_conc=${SIZING_MAX_CONC:-1024}
res=/tmp/res-sizing-$mode
rm -rf "$res" && mkdir -p "$res"

if [ -z "$gpu" ]; then
  case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
    *H200*) gpu=h200 ;;
    *H100*) gpu=h100 ;;
    *) gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cs 'A-Za-z0-9' '-' | tr A-Z a-z) ;;
  esac
fi
trap 'tar czf "$OUT/sizing-$gpu-$mode.tar.gz" -C "$res" . 2>/dev/null' EXIT

. scripts/gpu_setup.sh
echo "gpu: $gpu, mode: $mode"

if [ "$mode" = bench ]; then
  # Models alone, batched (no HTTP): the ceiling the serving path could reach; --quick keeps it short.
  timeout 400 python3 -m voxserve bench baker --backends cuda --device cuda --quick --out "$res/bench" 2>&1 | tail -30
  exit 0
fi

url=http://127.0.0.1:8123
python3 -m voxserve serve --backend cuda --device cuda --fallback torch --port 8123 --max-queue 4096 \
  --no-ui --log-level warning ${SIZING_SERVE_ARGS:-} >"$res/server.log" 2>&1 &
echo "serve flags: ${SIZING_SERVE_ARGS:-none}" >"$res/serve-flags.txt"
server=$!
for _ in $(seq 1 150); do curl -sf $url/ready >/dev/null && break; kill -0 $server 2>/dev/null || break; sleep 1; done
if ! curl -sf $url/ready; then echo "server did not become ready:"; tail -30 "$res/server.log"; exit 1; fi
echo
# One client, back to back: many requests, so its p99 means something; nothing else runs.
timeout 60 python3 -m voxserve loadtest $url -c 1 --unpaced --duration 15 --max-requests 400 \
  --stream-format audio --out "$res/one-stream" 2>&1 | tail -8
# The capacity curve: paced streams, doubling then bisecting around the target; every level is kept.
timeout 470 python3 -m voxserve loadtest $url --search --slo-ms "$slo" --max-concurrency "$max_conc" \
  --stream-format audio --duration "$level_s" --max-requests "${SIZING_MAX_REQUESTS:-100000}" --out "$res/search" 2>&1 | tail -25
nvidia-smi --query-gpu=memory.used --format=csv >>"$res/gpu.csv"
nvidia-smi --query-compute-apps=pid,used_memory --format=csv >"$res/apps.csv"
curl -s $url/metrics >"$res/metrics.txt"
kill $server; wait $server 2>/dev/null
python3 -m voxserve.scale.sizing_report table "$res" --gpu "$gpu" --out "$OUT/$gpu.json" 2>&1 | tail -3
