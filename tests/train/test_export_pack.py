"""Export a trained tiny checkpoint, build the clone pack from it, and speak through ``voxserve.TTS``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from voxserve.engine.speakers import Speaker
from voxserve.errors import InvalidInput, PackError
from voxserve.models.clone import TINY
from voxserve.packs.clone import convert
from voxserve.packs.clone.tiny import tiny_vocoder
from voxserve.packs.pack import Pack
from voxserve.train.corpus.format import write_tiny_corpus
from voxserve.train.data import load_corpus
from voxserve.train.export import export
from voxserve.train.trainer import TrainConfig, Trainer

PACK = "clone-test"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    write_tiny_corpus(root / "corpus", n=18)
    trainer = Trainer.create(
        load_corpus(root / "corpus"), TINY, TrainConfig(frames_per_batch=240, max_batch=6)
    )
    for _ in range(3):
        trainer.train_step()
    trainer.save(root / "run")
    info = export(root / "run", root / "weights", card=root / "card.md")
    return root, info, trainer


def test_export_writes_fp16_inference_weights_and_a_card(exported):
    root, _, trainer = exported
    state = load_file(str(root / "weights" / "acoustic.safetensors"))
    assert all(v.dtype == torch.float16 for v in state.values())
    assert state.keys() == trainer.model.state_dict().keys()  # no aligner, no optimizer
    assert not any(k.startswith("aligner") for k in state)
    written = json.loads((root / "weights" / "acoustic.json").read_text())
    assert written["training"]["step"] == 3 and written["speakers"] == ["tiny_a", "tiny_b"]
    assert len(written["symbols"]) == 502 and len(written["emotions"]) == 7
    card = (root / "card.md").read_text()
    assert "Model card" in card and "_to fill_" in card and "3 steps" in card


def test_pack_builds_and_speaks_a_cloned_voice_through_tts(exported, tmp_path, monkeypatch):
    from voxserve import TTS
    from voxserve.packs import store

    root, _, _ = exported
    monkeypatch.setenv("VOXSERVE_HOME", str(tmp_path))
    convert.convert_clone(store.packs_dir() / PACK, root / "weights", name=PACK, vocoder=tiny_vocoder())
    pack = Pack(store.packs_dir() / PACK)
    assert pack.config.speaker_input == "embedding" and pack.config.style["kind"] == "emotion-table"
    assert pack.config.sample_rate == 22050 and pack.config.emotions[0] == "普通"
    table = load_file(str(pack.path / "speakers.safetensors"))["embeddings"]
    assert table.shape == (2, 256)
    # Emotion presets are milder than baker's but point the same way.
    assert 1.0 < pack.config.prosody_presets["开心"]["pitch"] < 1.14

    rng = np.random.default_rng(0)
    voices = {
        f"voice_{i}": Speaker(
            PACK, embedding=(v / np.linalg.norm(v)).astype(np.float32), voice_id=f"voice_{i}"
        )
        for i, v in enumerate(rng.normal(size=(2, 256)))
    }

    class Directory:
        def lookup(self, voice_id: str) -> Speaker | None:
            return voices.get(voice_id)

    tts = TTS(voice=PACK, directories=[Directory()])
    a = tts.synthesize("你好，世界。Hello there.", voice="voice_0")
    b = tts.synthesize("你好，世界。Hello there.", voice="voice_1", emotion="happy")
    assert a.sample_rate == 22050 and a.samples.size > 0 and np.isfinite(a.samples).all()
    assert a.phones and b.samples.size > 0
    differ = a.samples.shape != b.samples.shape or not np.allclose(a.samples, b.samples)
    assert differ  # another voice and emotion condition the model


def test_pack_refuses_missing_or_mismatched_weights(exported, tmp_path):
    root, _, _ = exported
    with pytest.raises(PackError, match="no trained clone weights"):
        convert.convert_clone(tmp_path / "p", tmp_path / "nothing", vocoder=tiny_vocoder())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "acoustic.safetensors").write_bytes((root / "weights" / "acoustic.safetensors").read_bytes())
    info = json.loads((root / "weights" / "acoustic.json").read_text())
    info["config"]["hidden"] = 64
    (bad / "acoustic.json").write_text(json.dumps(info))
    with pytest.raises(PackError, match="does not match"):
        convert.convert_clone(tmp_path / "p", bad, vocoder=tiny_vocoder())
    assert not (tmp_path / "p").exists()


def test_export_reads_a_light_checkpoint_too(exported, tmp_path):
    root, _, trainer = exported
    trainer.save_light(tmp_path / "light.safetensors")
    info = export(tmp_path / "light.safetensors", tmp_path / "w")
    a = load_file(str(tmp_path / "w" / "acoustic.safetensors"))
    b = load_file(str(root / "weights" / "acoustic.safetensors"))
    assert info["training"]["step"] == 3 and all(torch.equal(a[k], b[k]) for k in b)


def test_store_offers_the_clone_voice_once_weights_exist(exported, monkeypatch):
    from voxserve.packs import store

    root, _, _ = exported
    monkeypatch.setenv("VOXSERVE_HOME", str(root / "empty-home"))  # no clone pack installed by other tests
    monkeypatch.setenv(convert.WEIGHTS_ENV, str(root / "missing"))
    assert "clone" not in store.available()
    monkeypatch.setenv(convert.WEIGHTS_ENV, str(root / "weights"))
    assert "clone" in store.available()
    assert convert.version().startswith(f"{convert.CONVERTER_VERSION}-")


def test_export_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(InvalidInput, match="no checkpoint"):
        export(tmp_path, tmp_path / "w")


def test_the_shipped_clone_weights_are_in_the_tree_and_load():
    """The trained voice is part of the release: fp16 safetensors ≤ 60 MB whose config builds the model."""
    from voxserve.models.clone import Config, Model

    d = convert.weights_dir()
    assert convert.weights_present(d), f"{d}: the trained clone weights are missing"
    size = (d / "acoustic.safetensors").stat().st_size
    assert size <= 60e6
    tensors = load_file(str(d / "acoustic.safetensors"))
    assert {t.dtype for k, t in tensors.items() if k != "speaker_table"} <= {torch.float16}
    info = json.loads((d / "acoustic.json").read_text())
    model = Model(Config.from_dict(info["config"]))
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    assert info["training"]["step"] > 0
