"""Benchmark workloads: which voice, which requests, and how they reach a backend.

A :class:`Workload` is what :func:`voxserve.bench.run.bench` measures: a pack (or
an object that quacks like one, for voices with no pack on disk) that any
:class:`~voxserve.backends.interface.Backend` can ``load``, the requests by size
class (``short``, ``medium``, ``long``), the frontend step that turns a request
into symbol ids, and the speaker/style tensors the acoustic model needs.

Presets (:data:`PRESETS`):

* ``baker``: the real default voice (FastSpeech2 + MB-MelGAN, 24 kHz) with the
  Mandarin frontend on :data:`~voxserve.bench.sentences.BENCH_SENTENCES`.
* ``emotivoice-size``: EmotiVoice's architecture at the released size (39 M acoustic
  + 14 M HiFi-GAN parameters, 16 kHz) with random weights from a fixed seed, tuned
  to about 5 frames per token, on random tokens of 40, 130 and 400 symbols.
* ``emotivoice-small``: the same structure, tiny (for tests and CI).

Any other name is taken as an installed voice pack and benchmarked like ``baker``.
Random workloads have no text, so their frontend costs nothing and ASR cannot judge them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voxserve.errors import NotFound, PackError

TOKENS = {"short": 40, "medium": 130, "long": 400}
"""Symbols per request of each class for full-size random workloads (≈ 15, 50, 150 characters)."""

SMALL_TOKENS = {"short": 8, "medium": 24, "long": 64}
"""Symbols per request of each class for the tiny test workload."""

FRAMES_PER_TOKEN = 5.0
"""Average frames per symbol the random EmotiVoice models are tuned to (EmotiVoice's speaking rate)."""

SEED = 1234
"""Seed of random weights, tokens, speaker and style: the same preset is the same workload every run."""


@dataclass(frozen=True)
class Item:
    """One request: ``text`` for a voice with a frontend, or ready ``ids`` (one tuple per sentence)."""

    name: str
    text: str | None = None
    ids: tuple[tuple[int, ...], ...] | None = None


@dataclass
class Workload:
    """A voice and its requests, ready to run on any backend.

    ``pack`` is handed to ``Backend.load`` (a :class:`~voxserve.packs.pack.Pack` or a
    :class:`ModulePack`). ``split``/``phonemize`` are the frontend (None for random
    tokens). ``speaker``/``style`` build the conditioning for a batch of ``n`` (None
    when the model takes none). ``asr`` says whether ASR can judge the audio.
    """

    name: str
    description: str
    pack: Any
    sample_rate: int
    hop_length: int
    classes: dict[str, list[Item]]
    split: Callable[[str], list[str]] | None = None
    phonemize: Callable[[str], list[int]] | None = None
    speaker: Callable[[int], torch.Tensor] | None = None
    style: Callable[[int], torch.Tensor] | None = None
    asr: bool = False
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def conditioned(self) -> bool:
        """True when the acoustic model needs speaker/style tensors (``Backend.warmup`` cannot pass them)."""
        return self.speaker is not None or self.style is not None

    def sentences(self, item: Item, first_only: bool = False) -> list[list[int]]:
        """The frontend step: symbol ids per sentence (only the first sentence with ``first_only``)."""
        if item.ids is not None:
            return [list(s) for s in (item.ids[:1] if first_only else item.ids)]
        if item.text is None or self.split is None or self.phonemize is None:
            raise PackError(f"workload {self.name!r}: item {item.name!r} has neither ids nor a frontend")
        parts = self.split(item.text)
        return [self.phonemize(s) for s in (parts[:1] if first_only else parts)]


class ModulePack:
    """Quacks like a :class:`~voxserve.packs.pack.Pack` for ``Backend.load``, from modules in memory.

    ``build_stage`` returns a fresh deep copy each call, so a backend that casts or
    fuses its modules in place never changes what the next backend gets. It has
    no files: ``path`` is only a name.
    """

    def __init__(self, config: Any, stages: dict[str, torch.nn.Module]) -> None:
        self.config = config
        self.path = Path(f"<{config.name}>")
        self._stages = stages

    @property
    def name(self) -> str:
        return str(self.config.name)

    def build_stage(self, which: str) -> torch.nn.Module:
        if which not in self._stages:
            raise PackError(f"{self.name}: no stage {which!r}; has {', '.join(self._stages)}")
        return copy.deepcopy(self._stages[which]).eval()


def voice_workload(name: str, quick: bool = False) -> Workload:
    """A real voice pack (converted on first use) on the fixed benchmark sentences."""
    from voxserve.bench.sentences import BENCH_SENTENCES
    from voxserve.engine.voice import frontend_for
    from voxserve.packs import store

    pack = store.load(name)
    frontend = frontend_for(pack)
    table = {s: i for i, s in enumerate(pack.config.symbols)}

    def phonemize(sentence: str) -> list[int]:
        seq = frontend.phonemize(sentence)
        try:
            return [table[s] for s in seq.symbols]
        except KeyError as e:
            raise PackError(f"frontend emitted symbol {e.args[0]!r} not in pack {name!r}") from None

    per_class = 1 if quick else None
    classes = {
        cls: [Item(f"{cls}-{i}", text=t) for i, t in enumerate(texts[:per_class])]
        for cls, texts in BENCH_SENTENCES.items()
    }
    return Workload(
        name=name,
        description=f"voice pack {name!r} ({pack.config.acoustic.family} + {pack.config.vocoder.family}), "
        "Mandarin benchmark sentences",
        pack=pack,
        sample_rate=pack.config.sample_rate,
        hop_length=pack.config.hop_length,
        classes=classes,
        split=frontend.split,
        phonemize=phonemize,
        asr=pack.config.language.startswith("zh"),
        facts={"acoustic": pack.config.acoustic.family, "vocoder": pack.config.vocoder.family},
    )


def emotivoice_workload(small: bool = False, quick: bool = False, seed: int = SEED) -> Workload:
    """EmotiVoice's structure with random weights: full size, or tiny with ``small``."""
    from voxserve.models.emotivoice import Config
    from voxserve.packs.emotivoice.layout import SMALL_CONFIG, placeholder_symbols, random_model
    from voxserve.packs.pack import PackConfig, StageSpec

    config = SMALL_CONFIG if small else Config()
    with torch.random.fork_rng():  # keep the caller's random state
        model = random_model(config, seed).fold_weight_norm()
        _tune_durations(model, seed)
        gen = torch.Generator().manual_seed(seed)
        lengths = SMALL_TOKENS if small else TOKENS
        per_class = 1 if quick else 3
        classes = {
            cls: [
                Item(
                    f"{cls}-{i}", ids=(tuple(torch.randint(1, config.n_vocab, (n,), generator=gen).tolist()),)
                )
                for i in range(per_class)
            ]
            for cls, n in lengths.items()
        }
        speaker_id = int(torch.randint(0, config.n_speakers, (1,), generator=gen))
        # BERT pooler outputs lie in (-1, 1) (tanh): style ‖ content, one fixed prompt for every request.
        style_row = torch.tanh(torch.randn(1, 2 * config.bert_dim, generator=gen))

    name = "emotivoice-small" if small else "emotivoice-size"
    spec = StageSpec(family="emotivoice", config=config.to_dict(), weights="<random>")
    pack_config = PackConfig(
        name=name,
        format_version=1,
        language="zh-en",
        sample_rate=config.sample_rate,
        hop_length=config.hop_length,
        mel={"n_mels": config.n_mels},
        symbols=placeholder_symbols(config.n_vocab),
        frontend="none",
        speakers=tuple(str(i) for i in range(config.n_speakers)),
        emotions=(),
        prosody_presets={},
        acoustic=spec,
        vocoder=spec,
        source={"random_seed": seed},
    )
    params = {k: sum(p.numel() for p in getattr(model, k).parameters()) for k in ("am", "generator")}
    return Workload(
        name=name,
        description=f"EmotiVoice architecture{' (tiny)' if small else ' at release size'}, random weights "
        f"(seed {seed}), ~{FRAMES_PER_TOKEN:g} frames per token, random tokens "
        + "/".join(str(n) for n in lengths.values()),
        pack=ModulePack(pack_config, {"acoustic": model.am, "vocoder": model.generator}),
        sample_rate=config.sample_rate,
        hop_length=config.hop_length,
        classes=classes,
        speaker=lambda n: torch.full((n,), speaker_id, dtype=torch.int64),
        style=lambda n: style_row.expand(n, -1).clone(),
        asr=False,
        facts={"acoustic_params": params["am"], "vocoder_params": params["generator"], "tokens": lengths},
    )


def _tune_durations(model: Any, seed: int) -> None:
    """Shift the duration predictor's bias so random tokens average :data:`FRAMES_PER_TOKEN` frames.

    The release writer's bias aims at 5 frames, but the spread of the random weights
    raises the mean (exp is convex); two fixed-point steps on a fixed batch bring it back.
    """
    am = model.am
    c = am.config
    gen = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(1, c.n_vocab, (4, 64), generator=gen)
    lengths = torch.full((4,), 64, dtype=torch.int64)
    speaker = torch.randint(0, c.n_speakers, (4,), generator=gen)
    style = torch.tanh(torch.randn(4, 2 * c.bert_dim, generator=gen))
    keep = torch.ones(4, 64)
    offset = am.duration_predictor.offset
    with torch.inference_mode():
        h = am.encode(ids, lengths, speaker, style)
    for _ in range(2):
        with torch.inference_mode():
            frames = (am.duration_predictor(h, keep).exp() - offset).clamp(min=0.0).mean().item()
        with torch.no_grad():
            am.duration_predictor.linear.bias.add_(math.log((FRAMES_PER_TOKEN + offset) / (frames + offset)))


PRESETS: dict[str, Callable[[bool], Workload]] = {
    "baker": lambda quick: voice_workload("baker", quick),
    "emotivoice-size": lambda quick: emotivoice_workload(small=False, quick=quick),
    "emotivoice-small": lambda quick: emotivoice_workload(small=True, quick=quick),
}
"""Preset name → workload builder taking ``quick`` (one request per class instead of three)."""


def load_workload(name: str, quick: bool = False) -> Workload:
    """The preset called ``name``, else the installed voice pack of that name."""
    if name in PRESETS:
        return PRESETS[name](quick)
    try:
        return voice_workload(name, quick)
    except NotFound as e:
        raise NotFound(f"{e} (or a benchmark preset: {', '.join(PRESETS)})", param="voice") from None
