#!/usr/bin/env bash
# Run on the GPU machine (the device tool) from the repository root:
#   bash scripts/gpu_verify.sh [tests] [batch] [bench]
#     tests  -> every @pytest.mark.gpu test (backends, trainer, batch)
#     batch  -> the long-document benchmark: data/books/tang300.md through `voxserve batch` on cuda
#     bench  -> `voxserve bench baker` (torch vs cuda) for latency, throughput and peak memory
#     jobs   -> server on cuda with --jobs: interactive TTFA idle vs during a book job (batch.loadcheck)
# Same setup as gpu_bench.sh (.whl wheels, .vxhome/baker.tar.xz). Results go to $OUT/verify.tar.gz.
set -u
res=/tmp/res-verify
mkdir -p "$res"
trap 'tar czf "$OUT/verify.tar.gz" -C "$res" . 2>/dev/null' EXIT
. scripts/gpu_setup.sh
for step in "${@:-tests batch bench}"; do
  case $step in
  tests)
    timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider tests/backends tests/train tests/batch \
      2>&1 | tee "$res/gpu-tests.log" | tail -25 ;;
  batch)
    timeout 200 python3 -m voxserve batch data/books/tang300.md -o /tmp/book --backend cuda --device cuda \
      --format flac --batch-size 64 --workers 4 --frontend-procs 4 --report "$res/batch-report.json" 2>&1 | tail -3
    ls -la /tmp/book | head -5; du -sh /tmp/book
    timeout 200 python3 -m voxserve batch data/books/tang300.md -o /tmp/book-prof --backend cuda --device cuda \
      --format flac --batch-size 64 --workers 4 --frontend-procs 4 --profile "$res/batch.prof" \
      --report "$res/batch-report-profiled.json" 2>&1 | tail -2 ;;
  bakerbench)
    timeout 240 python3 -m voxserve bench baker --backends torch,cuda --device cuda --out "$res/baker" 2>&1 | tail -12 ;;
  bench)
    timeout 240 python3 -m voxserve bench baker --backends torch,cuda --device cuda --out "$res/baker" 2>&1 | tail -12
    timeout 200 python3 -m voxserve bench emotivoice-size --backends torch,cuda --device cuda --out "$res/emotivoice" 2>&1 | tail -12 ;;
  jobs)
    python3 -m voxserve serve --backend cuda --device cuda --fallback torch --port 8123 --jobs \
      --jobs-dir /tmp/jobs --no-ui --log-level warning >"$res/server.log" 2>&1 &
    for _ in $(seq 1 120); do curl -sf http://127.0.0.1:8123/ready >/dev/null && break; sleep 1; done
    for c in 1 16; do
      timeout 150 python3 -m voxserve.batch.loadcheck http://127.0.0.1:8123 --book data/books/tang300.md \
        -c $c --duration 25 --warmup 3 --slo-ms 150 --job-format flac --out "$res/jobs-c$c" 2>&1 | tail -15
    done
    kill %1 ;;
  esac
done
