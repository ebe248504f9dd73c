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
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation \
  --upgrade --target /tmp/site .whl/*.whl .whl/jieba-0.42.1.tar.gz >"$res/pip.log" 2>&1 || { cat "$res/pip.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 VOXSERVE_HOME=$PWD/.vxhome
[ -d .vxhome/packs/baker ] || tar xJf .vxhome/baker.tar.xz -C .vxhome
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$res/gpu.csv"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' >>"$res/gpu.csv"
cat "$res/gpu.csv"

if [ "$mode" = bench ]; then
  timeout 280 python3 -m voxserve bench baker --backends torch,cuda --device cuda --out "$res/baker" 2>&1 | tail -60
  timeout 200 python3 -m voxserve bench emotivoice-size --backends torch,cuda --device cuda --out "$res/emotivoice" 2>&1 | tail -60
  timeout 60 python3 -m pytest -q -m gpu tests/backends 2>&1 | tail -15
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
