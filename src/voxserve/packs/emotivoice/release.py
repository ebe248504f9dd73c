"""Reading EmotiVoice's official release layout, checking every file before anything is converted.

A release directory is an EmotiVoice checkout with its downloads in place::

    config/joint/config.yaml                      model hyperparameters (optional: defaults = the release)
    data/youdao/text/{tokenlist,speaker2,emotion,pitch,energy,speed}
    outputs/prompt_tts_open_source_joint/ckpt/g_<step>       {"generator": state dict}
    outputs/style_encoder/ckpt/checkpoint_<step>           {"model": state dict, "module." keys}
    WangZeJun/simbert-base-chinese/{config.json,vocab.txt,...}

Checkpoints are read with ``torch.load(weights_only=True)``; nothing is
unpickled. Every error is a :class:`PackError` naming the file (and key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voxserve.errors import PackError
from voxserve.models.emotivoice import Config, Model

TEXT_DIR = Path("data/youdao/text")
LISTS = ("tokenlist", "speaker2", "emotion", "pitch", "energy", "speed")
GENERATOR_DIR = Path("outputs/prompt_tts_open_source_joint/ckpt")
GENERATOR_NAME = "g_00140000"
STYLE_DIR = Path("outputs/style_encoder/ckpt")
STYLE_NAME = "checkpoint_163431"
BERT_DIR = Path("WangZeJun/simbert-base-chinese")
YAML = Path("config/joint/config.yaml")

# Buffers that older ``transformers`` wrote into BERT state dicts; constants, not weights.
BERT_BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")

# config.yaml ``model:`` key → Config field, for keys that shape the network.
YAML_MODEL_KEYS = {
    "encoder_n_hidden": "hidden",
    "encoder_n_layers": "encoder_layers",
    "encoder_n_heads": "encoder_heads",
    "decoder_n_layers": "decoder_layers",
    "decoder_n_heads": "decoder_heads",
    "encoder_kernel_size_conv_mod": "encoder_ffn_kernel",
    "decoder_kernel_size_conv_mod": "decoder_ffn_kernel",
    "variance_n_hidden": "variance_hidden",
    "variance_n_layers": "pitch_layers",
    "variance_kernel_size": "pitch_kernel",
    "variance_embed_kernel_size": "variance_embed_kernel",
    "duration_n_layers": "duration_layers",
    "duration_kernel_size": "duration_kernel",
    "bert_embedding": "bert_dim",
    "upsample_rates": "upsample_rates",
    "upsample_kernel_sizes": "upsample_kernel_sizes",
    "upsample_initial_channel": "upsample_initial_channel",
    "resblock_kernel_sizes": "resblock_kernel_sizes",
    "resblock_dilation_sizes": "resblock_dilation_sizes",
}
YAML_TOP_KEYS = {
    "n_mels": "n_mels",
    "sr": "sample_rate",
    "hop_length": "hop_length",
    "n_fft": "n_fft",
    "win_length": "win_length",
    "fmin": "fmin",
    "fmax": "fmax",
}


@dataclass(frozen=True)
class ReleaseFiles:
    """Paths of one release, all checked to exist."""

    root: Path
    generator: Path
    style: Path
    text: Path
    bert: Path
    yaml: Path | None


def locate(root: str | Path) -> ReleaseFiles:
    """Find the files of a release under ``root``; the newest checkpoint wins where several exist."""
    root = Path(root)
    if not root.is_dir():
        raise PackError(f"{root}: not a directory (expected an EmotiVoice release)")
    text = root / TEXT_DIR
    for name in LISTS:
        if not (text / name).is_file():
            raise PackError(f"{text / name}: missing (EmotiVoice text list)")
    bert = root / BERT_DIR
    for name in ("config.json", "vocab.txt"):
        if not (bert / name).is_file():
            raise PackError(f"{bert / name}: missing (SimBERT directory of the style encoder)")
    yaml_path = root / YAML
    return ReleaseFiles(
        root=root,
        generator=_newest(root / GENERATOR_DIR, "g_", 8, GENERATOR_NAME),
        style=_newest(root / STYLE_DIR, "checkpoint_", 6, STYLE_NAME),
        text=text,
        bert=bert,
        yaml=yaml_path if yaml_path.is_file() else None,
    )


def _newest(folder: Path, prefix: str, digits: int, example: str) -> Path:
    # Same rule as EmotiVoice's own loader: prefix + N characters, last in sort order.
    found = sorted(p for p in folder.glob(prefix + "?" * digits) if p.is_file()) if folder.is_dir() else []
    if not found:
        raise PackError(f"{folder / example}: missing (no {prefix}{'?' * digits} checkpoint in {folder})")
    return found[-1]


def read_list(path: Path) -> tuple[str, ...]:
    """One label per line, stripped, as EmotiVoice reads them; empty lines and duplicates are errors."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise PackError(f"{path}: unreadable ({e})") from e
    if not lines:
        raise PackError(f"{path}: empty")
    for i, line in enumerate(lines):
        if not line:
            raise PackError(f"{path}: line {i + 1} is empty")
    if len(set(lines)) != len(lines):
        dup = next(x for x in lines if lines.count(x) > 1)
        raise PackError(f"{path}: duplicate entry {dup!r}")
    return tuple(lines)


def read_config(files: ReleaseFiles, n_vocab: int, n_speakers: int) -> Config:
    """The model Config from ``config.yaml`` (release defaults where it is absent) and the list sizes."""
    values: dict[str, Any] = {"n_vocab": n_vocab, "n_speakers": n_speakers}
    if files.yaml is None:
        return Config.from_dict(values, where=str(files.root / YAML))
    import yaml  # type: ignore[import-untyped]  # PyYAML, installed with transformers

    where = str(files.yaml)
    try:
        doc = yaml.safe_load(files.yaml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise PackError(f"{where}: unreadable ({e})") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise PackError(f"{where}: expected a mapping with a 'model' section")
    model = doc["model"]
    for key, field in YAML_MODEL_KEYS.items():
        if key in model:
            values[field] = model[key]
    for key, field in YAML_TOP_KEYS.items():
        if doc.get(key) is not None:
            values[field] = doc[key]
    if "fmax" not in values and "sample_rate" in values:
        values["fmax"] = values["sample_rate"] / 2  # null fmax means Nyquist
    hidden = model.get("encoder_n_hidden", Config.hidden)
    if model.get("decoder_n_hidden", hidden) != hidden:
        raise PackError(f"{where}: key 'model.decoder_n_hidden' must equal 'model.encoder_n_hidden'")
    if str(model.get("resblock", "1")) != "1":
        raise PackError(
            f"{where}: key 'model.resblock' is {model['resblock']!r}; only HiFi-GAN resblock '1' is supported"
        )
    n_mels = values.get("n_mels", Config.n_mels)
    if model.get("initial_channel", n_mels) != n_mels:
        raise PackError(f"{where}: key 'model.initial_channel' must equal 'n_mels'")
    return Config.from_dict(values, where=where)


def _load(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files; all mean "unusable"
        raise PackError(
            f"{path}: cannot be read as a weights-only torch checkpoint ({type(e).__name__}: {e})"
        ) from e


def legacy_to_parametrized(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename old-style weight norm (``weight_g``/``weight_v``) to ``parametrizations.weight.original0/1``."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + "parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + "parametrizations.weight.original1"
        out[key] = value
    return out


def check_state(path: Path, state: Any, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Require exactly the expected keys with the expected shapes (floating tensors); returns float32 copies."""
    if not isinstance(state, dict):
        raise PackError(f"{path}: state dict is a {type(state).__name__}, not a mapping")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise PackError(
            f"{path}: missing key {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    if unexpected:
        raise PackError(
            f"{path}: unexpected key {unexpected[0]!r}"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
        )
    out = {}
    for key, ref in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise PackError(f"{path}: key {key!r} is not a floating-point tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise PackError(f"{path}: key {key!r} has shape {list(value.shape)}, expected {list(ref.shape)}")
        out[key] = value.detach().to(torch.float32).contiguous()
    return out


def load_generator(path: Path, config: Config) -> dict[str, torch.Tensor]:
    """The ``generator`` entry of a ``g_*`` file, checked key for key against ``Model(config)``."""
    ckpt = _load(path)
    if not isinstance(ckpt, dict) or "generator" not in ckpt:
        raise PackError(f"{path}: missing key 'generator' (expected {{'generator': state_dict}})")
    state = ckpt["generator"]
    if isinstance(state, dict):
        state = legacy_to_parametrized(state)
        # A table whose rows disagree with its text list is the list's fault as often as the checkpoint's.
        for key, rows, listed in (
            ("am.src_word_emb.weight", config.n_vocab, "tokenlist"),
            ("am.spk_tokenizer.weight", config.n_speakers, "speaker2"),
        ):
            table = state.get(key)
            if isinstance(table, torch.Tensor) and table.dim() == 2 and table.shape[0] != rows:
                raise PackError(
                    f"{path}: key {key!r} has {table.shape[0]} rows but {TEXT_DIR / listed} lists {rows} entries"
                )
    with torch.device("meta"):  # shapes only: no memory, no init cost
        expected = Model(config).state_dict()
    return check_state(path, state, expected)


def read_style(path: Path) -> dict[str, Any]:
    """The ``model`` entry of a style-encoder checkpoint, ``module.`` prefix and constant buffers removed."""
    ckpt = _load(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or not isinstance(ckpt["model"], dict):
        raise PackError(f"{path}: missing key 'model' (expected {{'model': state_dict}})")
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in ckpt["model"].items()}
    for key in BERT_BUFFERS:
        state.pop(key, None)
    return state


def check_style(
    path: Path, state: dict[str, Any], expected: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Check a :func:`read_style` state against ``expected``; returns (weights, ignored keys).

    Keys outside ``bert.`` that the encoder does not have are ignored and listed
    (EmotiVoice itself loads this file with ``strict=False``); any other mismatch
    is an error.
    """
    ignored = sorted(k for k in state if k not in expected and not k.startswith("bert."))
    kept = {k: v for k, v in state.items() if k not in ignored}
    return check_state(path, kept, expected), ignored
