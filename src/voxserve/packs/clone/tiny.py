"""A tiny random clone pack (untrained acoustic model + tiny random HiFi-GAN) for tests and CI benches.

Same files, keys and facts as a real ``clone`` pack (EmotiVoice symbols, the seven
emotions, 22.05 kHz, hop 256), so frontends, engine, registry and benchmarks run end to
end in seconds; the audio is noise. Not for anything that judges quality.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

FRAMES_PER_SYMBOL = 5
"""Frames per symbol the random duration predictor is biased to (frames)."""


def tiny_vocoder(seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, state) of a random HiFi-GAN with the universal one's rate and hop, ~20 k parameters."""
    import torch

    from voxserve.models.clone import vocoder as hifigan

    torch.manual_seed(seed)
    config = hifigan.Config(
        upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),)
    )
    return config.to_dict(), hifigan.Model(config).state_dict()


def write_tiny_weights(
    weights_dir: Path, seed: int = 0, speakers: tuple[str, ...] = ("tiny_a", "tiny_b")
) -> Path:
    """Random tiny acoustic weights + acoustic.json in the layout ``voxserve train export`` writes."""
    import math

    import torch
    from safetensors.torch import save_file

    from voxserve.engine.controls import EMOTIONS
    from voxserve.frontend.symbols.emotivoice import tokens
    from voxserve.models.clone import TINY, Model

    symbols = tokens()
    config = dataclasses.replace(TINY, n_vocab=len(symbols), n_speakers=len(speakers))
    torch.manual_seed(seed)
    model = Model(config).eval()
    with torch.no_grad():
        model.duration_predictor.linear.bias.fill_(math.log(FRAMES_PER_SYMBOL + config.duration_offset))
        model.to_mel.bias.fill_(-5.0)
        model.speaker_table.copy_(torch.nn.functional.normalize(torch.randn(len(speakers), 256), dim=-1))
    weights_dir.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.half().contiguous() for k, v in model.state_dict().items()},
        str(weights_dir / "acoustic.safetensors"),
    )
    info = {
        "format": "voxserve-clone-acoustic",
        "config": config.to_dict(),
        "symbols": list(symbols),
        "emotions": list(EMOTIONS),
        "speakers": list(speakers),
        "sample_rate": config.sample_rate,
        "hop_length": config.hop_length,
        "mel": {"n_mels": 80, "log": "natural log of magnitude mel"},
        "training": {"step": 0, "note": "random weights (tiny test pack)"},
    }
    (weights_dir / "acoustic.json").write_text(json.dumps(info, ensure_ascii=False), "utf-8")
    return weights_dir


def write_tiny_pack(out_dir: Path, name: str = "clone-tiny", seed: int = 0) -> Path:
    """Build a tiny random clone pack into ``out_dir`` (atomically); returns it."""
    from voxserve.packs.clone.convert import convert_clone

    with tempfile.TemporaryDirectory(prefix="clone-tiny-weights-") as tmp:
        weights = write_tiny_weights(Path(tmp), seed)
        return convert_clone(Path(out_dir), weights, name=name, vocoder=tiny_vocoder(seed))
