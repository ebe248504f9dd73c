#!/usr/bin/env bash
# One resumable training step of the clone voice on the GPU machine (the device tool), from the repo root:
#
#   bash scripts/gpu_train.sh MINUTES [EXTRA voxserve-train-run FLAGS...]
#
# Paths (all under out/, which git ignores, so the device tool can carry them):
#   out/corpus                  the training corpus (voxserve train corpus): carry it on a machine's first call,
#                               or out/corpus.tar.xz (tar cJf out/corpus.tar.xz -C out/corpus .) when it is too big
#   out/train-run               the run directory. A warm machine (next call within its idle window) still
#                               has it, with the exact checkpoint: the call resumes from it, carrying nothing.
#   out/train-light.safetensors a light checkpoint (fp16 weights, data position, no optimizer moments), as the
#                               previous call returned it: carry it to continue on a fresh machine, where the
#                               exact checkpoint (~80 MiB) would not fit the 64 MiB carry limit with the corpus.
# With neither checkpoint present the call starts a new run.
# Environment: CORPUS, RUN, LIGHT (defaults above), SIZE (new runs: base), DEVICE (default cuda; cpu to try it here).
#
# Needs only what the GPU image has (python3 with torch, numpy, safetensors); installs nothing.
# Leaves in $OUT (the device tool returns at most 8 files of 16 MiB): the exact checkpoint's parts
# ckpt-II-of-NN.part (15 MiB each; 6 for the base size), light.safetensors, and report.tar.gz
# (train.log, history.csv, curve.svg, summary.json, gpu.txt).
set -u
minutes=${1:?usage: gpu_train.sh MINUTES [extra flags]}
shift
corpus=${CORPUS:-out/corpus}
run=${RUN:-out/train-run}
light=${LIGHT:-out/train-light.safetensors}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
# A corpus over the carry limit travels as out/corpus.tar.xz (about 2/3 of its size): unpack it once.
if [ ! -f "$corpus/meta.json" ] && [ -f "$corpus.tar.xz" ]; then
  mkdir -p "$corpus" && tar xJf "$corpus.tar.xz" -C "$corpus" && echo "unpacked $corpus.tar.xz"
fi
[ -f "$corpus/meta.json" ] || { echo "no corpus at $corpus (carry out/corpus or out/corpus.tar.xz)"; exit 2; }
mkdir -p "$run"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c 'import torch, numpy, safetensors; print("torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__, "safetensors", safetensors.__version__)'
} >"$run/gpu.txt" 2>&1
cat "$run/gpu.txt"

resume=()
if ls "$run"/ckpt-*-of-*.part >/dev/null 2>&1; then
  resume=(--resume "$run")
  echo "resuming exactly from $run ($(ls "$run"/ckpt-*.part | wc -l) parts)"
elif [ -f "$light" ]; then
  resume=(--resume "$light")
  echo "resuming from the light checkpoint $light (fresh optimizer moments, lr ramps up again)"
else
  echo "new run (size ${SIZE:-base})"
fi
python3 -m voxserve.train.commands run --corpus "$corpus" --out "$run" --minutes "$minutes" \
  --size "${SIZE:-base}" --device "${DEVICE:-cuda}" "${resume[@]}" "$@"
status=$?
nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader >>"$run/gpu.txt" 2>&1

cp "$run"/ckpt-*-of-*.part "$OUT/" 2>/dev/null
[ -f "$run/light.safetensors" ] && cp "$run/light.safetensors" "$OUT/"
report=()
for f in train.log history.csv curve.svg summary.json gpu.txt; do [ -f "$run/$f" ] && report+=("$f"); done
tar czf "$OUT/report.tar.gz" -C "$run" "${report[@]}"
ls -la "$OUT"
tail -4 "$run/train.log"
exit $status
