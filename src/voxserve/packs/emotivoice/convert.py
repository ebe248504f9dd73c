"""Convert an EmotiVoice release into a voxserve pack, and load such a pack.

The pack (``out_dir``)::

    config.json                 facts: rate, hop, mel, symbols, speakers, emotions, prompts, stages
    model.safetensors           the joint model (acoustic + HiFi-GAN), keys as in the release
    style_encoder.safetensors   BERT + heads of the style encoder, ``module.`` prefix removed
    text/{tokenlist,...}        copies of the release's text lists
    bert/                       the SimBERT config and tokenizer files (its weights are superseded
                                by the style checkpoint and are not copied)

Conversion loads every tensor strictly (names and shapes) before writing
anything, and writes atomically, so a failed conversion leaves no pack behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voxserve.errors import PackError
from voxserve.models.emotivoice import Config, Model
from voxserve.packs.emotivoice import release as rl

FAMILY = "emotivoice"
MODEL_FILE = "model.safetensors"
STYLE_FILE = "style_encoder.safetensors"
# Weight files of a Hugging Face directory; everything else (config, vocab, tokenizer files) is copied.
_WEIGHT_SUFFIXES = (".bin", ".safetensors", ".h5", ".msgpack", ".ckpt", ".pt", ".pth", ".onnx")


def convert_emotivoice(release_dir: str | Path, out_dir: str | Path, name: str = "emotivoice") -> Path:
    """Validate the release under ``release_dir`` and write a pack to ``out_dir``; returns ``out_dir``.

    Raises :class:`PackError` naming the file (and key) for anything missing or
    malformed. Does not touch ``out_dir`` unless the whole release is valid.
    """
    from safetensors.torch import save_file

    from voxserve.models.emotivoice.style import StyleEncoder, StyleHeads, read_bert_config

    files = rl.locate(release_dir)
    lists = {n: rl.read_list(files.text / n) for n in rl.LISTS}
    config = rl.read_config(files, n_vocab=len(lists["tokenlist"]), n_speakers=len(lists["speaker2"]))
    weights = rl.load_generator(files.generator, config)

    bert_config = read_bert_config(files.bert)
    if bert_config.hidden_size != config.bert_dim:
        raise PackError(
            f"{files.bert / 'config.json'}: key 'hidden_size' is {bert_config.hidden_size}, "
            f"but the acoustic model takes {config.bert_dim}-wide embeddings"
        )
    style_state = rl.read_style(files.style)
    proj = style_state.get("style_embed_proj.weight")
    if not isinstance(proj, torch.Tensor) or proj.dim() != 2:
        raise PackError(f"{files.style}: missing key 'module.style_embed_proj.weight'")
    heads = StyleHeads(
        pitch=len(lists["pitch"]),
        speed=len(lists["speed"]),
        energy=len(lists["energy"]),
        emotion=len(lists["emotion"]),
        style_dim=int(proj.shape[0]),  # in no list or config: the checkpoint's shape is the fact
    )
    with torch.device("meta"):
        expected = StyleEncoder(bert_config, heads).state_dict()
    style_weights, ignored = rl.check_style(files.style, style_state, expected)

    pack_config = {
        "name": name,
        "format_version": 1,
        "language": "zh-en",
        "family": FAMILY,
        "sample_rate": config.sample_rate,
        "hop_length": config.hop_length,
        "mel": {
            "n_mels": config.n_mels,
            "n_fft": config.n_fft,
            "win_length": config.win_length,
            "fmin": config.fmin,
            "fmax": config.fmax,
            "log": "natural log of magnitude mel, clamped at 1e-5",
        },
        "symbols": list(lists["tokenlist"]),
        "frontend": "emotivoice",
        "speakers": list(lists["speaker2"]),
        "emotions": list(lists["emotion"]),
        "prompts": {k: list(lists[k]) for k in ("pitch", "energy", "speed")},
        "speaker_input": "table",
        # Both stages load the joint model (one checkpoint) and take its part: ``am`` and the jointly
        # trained HiFi-GAN ``generator`` (see ``voxserve.models.emotivoice.PARTS``).
        "acoustic": {"family": FAMILY, "config": config.to_dict(), "weights": MODEL_FILE},
        "vocoder": {"family": FAMILY, "config": config.to_dict(), "weights": MODEL_FILE, "joint": True},
        "style": {
            "kind": "emotivoice-prompt",
            "encoder": {
                "weights": STYLE_FILE,
                "bert": "bert",
                "heads": {
                    "pitch": heads.pitch,
                    "speed": heads.speed,
                    "energy": heads.energy,
                    "emotion": heads.emotion,
                },
                "style_dim": heads.style_dim,
            },
        },
        "source": {
            "generator": {"file": files.generator.name, "sha256": _sha256(files.generator)},
            "style_encoder": {
                "file": files.style.name,
                "sha256": _sha256(files.style),
                "ignored_keys": ignored,
            },
        },
    }

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        save_file(weights, str(tmp / MODEL_FILE))
        save_file(style_weights, str(tmp / STYLE_FILE))
        (tmp / "text").mkdir()
        for n in rl.LISTS:
            (tmp / "text" / n).write_text("\n".join(lists[n]) + "\n", encoding="utf-8")
        (tmp / "bert").mkdir()
        for item in sorted(files.bert.iterdir()):
            if item.is_file() and not item.name.endswith(_WEIGHT_SUFFIXES):
                shutil.copyfile(item, tmp / "bert" / item.name)
        (tmp / "config.json").write_text(
            json.dumps(pack_config, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class EmotiVoicePack:
    """A loaded EmotiVoice pack: model with weights (eval mode), style embedder, and the pack's facts."""

    path: Path
    config: Config
    model: Model
    style: Any
    """A :class:`voxserve.models.emotivoice.style.PromptEmbedder` (prompt/content text → embedding)."""
    facts: dict[str, Any]
    """The parsed config.json (symbols, speakers, emotions, prompts, mel settings…)."""


def load_emotivoice_pack(
    pack_dir: str | Path,
    device: str | torch.device = "cpu",
    fold_weight_norm: bool = True,
    cache_size: int = 1024,
) -> EmotiVoicePack:
    """Load a pack written by :func:`convert_emotivoice`, strictly; errors name the file and key.

    ``fold_weight_norm`` bakes HiFi-GAN's weight norm for faster inference (the
    model's vocoder keys then read ``weight``).
    """
    from safetensors.torch import load_file

    path = Path(pack_dir)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise PackError(f"{cfg_path}: missing (not a voxserve pack)")
    try:
        facts = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackError(f"{cfg_path}: unreadable ({e})") from e
    if not isinstance(facts, dict) or facts.get("family") != FAMILY:
        raise PackError(f"{cfg_path}: key 'family' must be {FAMILY!r}")
    if facts.get("format_version") != 1:
        raise PackError(f"{cfg_path}: key 'format_version' must be 1")
    for key in ("acoustic", "symbols", "speakers"):
        if key not in facts:
            raise PackError(f"{cfg_path}: missing key {key!r}")
    acoustic = facts["acoustic"]
    if not isinstance(acoustic, dict) or "config" not in acoustic or "weights" not in acoustic:
        raise PackError(f"{cfg_path}: key 'acoustic' needs 'config' and 'weights'")
    config = Config.from_dict(acoustic["config"], where=f"{cfg_path}: acoustic.config")
    if len(facts["symbols"]) != config.n_vocab or len(facts["speakers"]) != config.n_speakers:
        raise PackError(f"{cfg_path}: 'symbols'/'speakers' do not match acoustic.config n_vocab/n_speakers")

    model = Model(config)
    _load_strict(model, path / str(acoustic["weights"]), load_file)
    if fold_weight_norm:
        model.fold_weight_norm()
    model = model.eval().to(device)

    style = load_style_embedder(path, _style_spec(facts, cfg_path), device=device, cache_size=cache_size)
    return EmotiVoicePack(path=path, config=config, model=model, style=style, facts=facts)


def _style_spec(facts: dict[str, Any], cfg_path: Path) -> dict[str, Any]:
    # ``style.encoder``; packs converted before that key have ``style_encoder`` at the top.
    style = facts.get("style")
    spec = style.get("encoder") if isinstance(style, dict) else facts.get("style_encoder")
    if not isinstance(spec, dict):
        raise PackError(f"{cfg_path}: missing key 'style.encoder'")
    return spec


def load_style_embedder(
    pack_dir: str | Path, spec: dict[str, Any], device: str | torch.device = "cpu", cache_size: int = 1024
) -> Any:
    """The pack's style encoder (strict) as a cached :class:`PromptEmbedder`; ``spec`` is ``style.encoder``."""
    from safetensors.torch import load_file

    from voxserve.models.emotivoice.style import PromptEmbedder, StyleEncoder, StyleHeads, read_bert_config

    path = Path(pack_dir)
    try:
        heads = StyleHeads(**spec["heads"], style_dim=int(spec["style_dim"]))
        bert_dir, style_file = path / str(spec["bert"]), path / str(spec["weights"])
    except (KeyError, TypeError, ValueError) as e:
        raise PackError(f"{path / 'config.json'}: key 'style.encoder' is malformed ({e})") from e
    encoder = StyleEncoder(read_bert_config(bert_dir), heads)
    _load_strict(encoder, style_file, load_file)
    return PromptEmbedder(encoder.eval().to(device), bert_dir, cache_size=cache_size)


def _load_strict(module: torch.nn.Module, weights: Path, load_file: Any) -> None:
    if not weights.is_file():
        raise PackError(f"{weights}: missing weights file")
    try:
        state = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise PackError(f"{weights}: unreadable ({type(e).__name__}: {e})") from e
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())  # PyTorch's message spans lines; keep the error one line
        raise PackError(f"{weights}: does not match the model ({detail})") from e
