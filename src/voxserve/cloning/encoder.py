"""``SpeakerEncoder``: 16 kHz speech to a 256-d unit d-vector, with the GE2E weights from Resemblyzer.

An utterance is cut into partials of 1.6 s that start every 1/1.3 s (the last one zero-padded
when at least 75 % of it is audio); each partial is embedded, and the mean of the partial
embeddings, normalised again, is the utterance's embedding. The weights are read from the
``resemblyzer`` package's ``pretrained.pt`` with ``torch.load(weights_only=True)`` (tensors and
plain containers only, no arbitrary unpickling), without importing ``resemblyzer`` itself.
This class does not clean audio: give it what ``voxserve.cloning.audio.prepare`` returns.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import numpy as np
import torch

from voxserve.errors import InvalidInput, PackError
from voxserve.models.speaker_encoder import Config, MelFrontend, Model

RESEMBLYZER = "resemblyzer==0.1.4"
"""The package that carries the pretrained weights (``pip install --no-deps resemblyzer==0.1.4``)."""


def default_weights() -> Path:
    """Path of ``pretrained.pt`` inside the installed ``resemblyzer`` package (not imported)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise PackError(f"speaker encoder weights need {RESEMBLYZER} (pip install --no-deps {RESEMBLYZER})")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise PackError(f"speaker encoder weights: {path} is missing; reinstall {RESEMBLYZER}")
    return path


def read_state(path: Path, model: Model) -> dict[str, torch.Tensor]:
    """The ``lstm.*`` and ``linear.*`` tensors of a checkpoint, checked against ``model``'s shapes.

    Accepts Resemblyzer's checkpoint (``{"model_state": {...}, ...}``), a bare state dict, or a
    ``.safetensors`` file. Raises ``PackError`` naming the file and the bad key.
    """
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: object = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unreadable, truncated or not a weights-only checkpoint
        raise PackError(f"{path}: cannot read speaker encoder weights ({e})") from e
    if isinstance(raw, dict) and isinstance(raw.get("model_state"), dict):
        raw = raw["model_state"]
    if not isinstance(raw, dict):
        raise PackError(f"{path}: expected a state dict, got {type(raw).__name__}")
    state = {}
    for key, want in model.state_dict().items():
        tensor = raw.get(key)
        if not isinstance(tensor, torch.Tensor):
            raise PackError(f"{path}: missing tensor {key!r}")
        if tuple(tensor.shape) != tuple(want.shape):
            raise PackError(f"{path}: {key} has shape {tuple(tensor.shape)}, expected {tuple(want.shape)}")
        state[key] = tensor.float()
    return state


def partial_starts(n_samples: int, config: Config) -> list[int]:
    """First mel frame of each partial utterance for ``n_samples`` of audio (at least one)."""
    hop, width, step = config.hop_length, config.partial_frames, config.frame_step
    n_frames = -(-(n_samples + 1) // hop)
    starts = list(range(0, max(1, n_frames - width + step + 1), step))
    # Drop a last partial that would be mostly padding, unless it is the only one.
    coverage = (n_samples - starts[-1] * hop) / (width * hop)
    if coverage < config.min_coverage and len(starts) > 1:
        starts.pop()
    return starts


class SpeakerEncoder:
    """Embeds cleaned 16 kHz speech into a d-vector. Thread-safe; load once with ``SpeakerEncoder.load()``.

    Does not decode, resample, trim or normalise audio (``voxserve.cloning.audio`` does), and
    does not judge whether the audio is speech.
    """

    def __init__(self, model: Model, device: str = "cpu") -> None:
        self.config = model.config
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.frontend = MelFrontend(model.config).to(self.device)
        self._lock = threading.Lock()  # one forward at a time keeps CPU threads from oversubscribing

    @property
    def sample_rate(self) -> int:
        """Rate ``embed`` expects (Hz)."""
        return self.config.sample_rate

    @property
    def dim(self) -> int:
        """Length of an embedding."""
        return self.config.embedding_size

    @classmethod
    def load(cls, weights: Path | str | None = None, device: str = "cpu") -> SpeakerEncoder:
        """The encoder with ``weights`` (default: Resemblyzer's ``pretrained.pt``); cached per path and device."""
        path = Path(weights).expanduser().resolve() if weights is not None else default_weights()
        return _load_cached(str(path), device)

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """One utterance (float samples at ``sample_rate``, mono) -> float32 [dim], unit length."""
        partials = self.embed_partials(wav)
        mean = partials.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if not norm > 0:
            raise InvalidInput("the audio gives no speaker embedding (no signal the encoder responds to)")
        return (mean / norm).astype(np.float32)

    def embed_partials(self, wav: np.ndarray) -> np.ndarray:
        """Embeddings of each partial utterance of ``wav``: float32 [partials, dim], rows of unit length."""
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise InvalidInput(f"speaker encoder needs mono samples, got shape {wav.shape}")
        starts = partial_starts(wav.size, self.config)
        width, hop = self.config.partial_frames, self.config.hop_length
        end = (starts[-1] + width) * hop
        if end >= wav.size:
            wav = np.pad(wav, (0, end - wav.size))
        with self._lock, torch.inference_mode():
            mel = self.frontend(torch.from_numpy(wav).to(self.device)[None])[0]
            batch = torch.stack([mel[s : s + width] for s in starts])
            return self.model(batch).float().cpu().numpy()

    def embed_many(self, wavs: list[np.ndarray]) -> np.ndarray:
        """One speaker from several utterances: the normalised mean of their embeddings, float32 [dim]."""
        if not wavs:
            raise InvalidInput("no audio to embed")
        mean = np.mean([self.embed(w) for w in wavs], axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, device: str) -> SpeakerEncoder:
    model = Model(Config())
    model.load_state_dict(read_state(Path(path), model))
    return SpeakerEncoder(model, device)
