#!/usr/bin/env bash
# Run on the GPU machine (the device tool) from the repository root:
#   bash scripts/gpu_bench.sh bench   -> backend benchmark, baker and the EmotiVoice-size preset
#   bash scripts/gpu_bench.sh load    -> HTTP server on the cuda backend + voxserve loadtest
# It expects .whl/ (cp312 wheels for what the GPU image lacks) and .vxhome/baker.tar.xz (the baker pack,
# converted on a machine that has tflite). Results are bundled into $OUT/<mode>.tar.gz because only a
# few files come back.
set -u
mode=${1:?bench or load}
res=/tmp/res-$mode
mkdir -p "$res"
trap 'tar czf "$OUT/$mode.tar.gz" -C "$res" . 2>/dev/null' EXIT
. scripts/gpu_setup.sh

if [ "$mode" = bench ]; then
  # BENCH_BACKENDS (default torch,cuda), BENCH_VOICES (default "baker emotivoice"), BENCH_TESTS (1: GPU tests).
  for v in ${BENCH_VOICES:-baker emotivoice}; do
    preset=$v; [ "$v" = emotivoice ] && preset=emotivoice-size
    timeout 300 python3 -m voxserve bench "$preset" --backends "${BENCH_BACKENDS:-torch,cuda}" --device cuda \
      --out "$res/$v" 2>&1 | tail -40
  done
  [ "${BENCH_TESTS:-1}" = 1 ] && timeout 120 python3 -m pytest -q -m gpu tests/backends 2>&1 | tee "$res/gpu-tests.log" | tail -15
else
  python3 -m voxserve serve --backend cuda --device cuda --fallback torch --port 8123 --max-queue 4096 \
    --no-ui --log-level warning >"$res/server.log" 2>&1 &
  for _ in $(seq 1 120); do curl -sf http://127.0.0.1:8123/ready >/dev/null && break; sleep 1; done
  curl -s http://127.0.0.1:8123/ready; echo
  timeout 60 python3 -m voxserve loadtest http://127.0.0.1:8123 -c 1 --stream-format audio --duration 15 \
    --out "$res/one-stream" 2>&1 | tail -25
  timeout 330 python3 -m voxserve loadtest http://127.0.0.1:8123 --search --slo-ms 150 --max-concurrency 1024 \
    --stream-format audio --duration 20 --out "$res/search" 2>&1 | tail -40
  curl -s http://127.0.0.1:8123/metrics >"$res/metrics.txt"
  nvidia-smi --query-gpu=memory.used --format=csv >>"$res/gpu.csv"
  kill %1
fi
