"""CER of the CUDA fast path against the eager reference on the GPU, judged where the judge is installed.

    python scripts/gpu_quality.py clips OUT_DIR          # GPU machine: speak the quality sentences
    python scripts/gpu_quality.py score CLIPS_DIR DOC    # here: Whisper base judges, writes DOC.md/.json

The GPU machine has no ASR judge (faster-whisper and its model are too big to carry), so the
clips travel: ``clips`` speaks every sentence of ``QUALITY_SENTENCES`` with ``torch`` (eager fp32
on the GPU, the reference) and ``cuda`` and writes 16-bit WAVs; ``score`` transcribes them with the
same judge as ``tests/quality`` and compares mean CER (issue 3: within +0.01 of the reference).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from voxserve.bench.sentences import QUALITY_SENTENCES

SYSTEMS = ("torch", "cuda")
MAX_CER_GAIN = 0.01


def clips(out: Path) -> None:
    import torch

    from voxserve import TTS

    for name in SYSTEMS:
        tts = TTS(backend=name, device="cuda")
        (out / name).mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(QUALITY_SENTENCES):
            (out / name / f"{i:02d}.wav").write_bytes(tts.synthesize(text).wav())
        del tts
        torch.cuda.empty_cache()
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda}
    (out / "clips.json").write_text(json.dumps(meta) + "\n")


def score(clip_dir: Path, doc: Path) -> None:
    import soundfile as sf

    from voxserve.bench.judge import Judge

    judge = Judge(cpu_threads=2)
    result: dict[str, object] = {"clips": json.loads((clip_dir / "clips.json").read_text()), "systems": {}}
    rows: dict[str, list[float]] = {}
    for name in SYSTEMS:
        cers = []
        for i, text in enumerate(QUALITY_SENTENCES):
            samples, rate = sf.read(str(clip_dir / name / f"{i:02d}.wav"), dtype="float32")
            cers.append(judge.cer(text, judge.transcribe(np.asarray(samples, np.float32), rate)))
        rows[name] = cers
        result["systems"][name] = {"mean_cer": round(float(np.mean(cers)), 4), "cer": [round(c, 4) for c in cers]}
    gain = float(np.mean(rows["cuda"]) - np.mean(rows["torch"]))
    result["cuda_minus_torch"] = round(gain, 4)
    result["within_bound"] = gain <= MAX_CER_GAIN
    doc.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    meta = result["clips"]
    doc.with_suffix(".md").write_text(
        "# CER of the CUDA fast path against the eager reference (GPU clips, Whisper base judge)\n\n"
        f"Clips spoken on {meta['device']} (torch {meta['torch']}, CUDA {meta['cuda']}) by "
        "`scripts/gpu_quality.py clips`, judged on the 2-core CPU machine by `scripts/gpu_quality.py score` "
        f"(the judge of `tests/quality`), {len(QUALITY_SENTENCES)} quality sentences.\n\n"
        "| system | mean CER |\n| --- | ---: |\n"
        + "".join(f"| {n} | {np.mean(rows[n]):.4f} |\n" for n in SYSTEMS)
        + f"\ncuda − torch: {gain:+.4f} (bound: ≤ +{MAX_CER_GAIN}) — "
        + ("within" if gain <= MAX_CER_GAIN else "**outside**")
        + "\n"
    )
    print(doc.with_suffix(".md").read_text())


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "clips":
        clips(Path(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "score":
        score(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: gpu_quality.py clips OUT_DIR | score CLIPS_DIR DOC")
