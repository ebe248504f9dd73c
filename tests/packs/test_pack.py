"""The pack format and the store: validation, naming, location."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxserve.errors import NotFound, PackError
from voxserve.packs import store
from voxserve.packs.pack import Pack


def test_baker_pack_is_complete(tts):
    pack = tts.voice().pack
    cfg = pack.config
    assert cfg.name == "baker" and cfg.sample_rate == 24000 and cfg.hop_length == 300
    assert len(cfg.symbols) == 219 and cfg.symbols[0] == "pad" and cfg.symbols[-1] == "eos"
    assert cfg.mel["n_mels"] == 80
    assert set(cfg.prosody_presets) == {"普通", "生气", "开心", "惊讶", "悲伤", "厌恶", "恐惧"}
    assert (pack.path / "acoustic.safetensors").is_file() and (pack.path / "vocoder.safetensors").is_file()
    # Packs live in the voxserve cache, never in the working directory or site-packages.
    assert pack.path.resolve().is_relative_to(store.home().resolve())
    assert "site-packages" not in str(pack.path)


def _write_config(tmp_path: Path, **override) -> Path:
    base = json.loads((store.packs_dir() / "baker" / "config.json").read_text("utf-8"))
    base.update(override)
    (tmp_path / "config.json").write_text(json.dumps(base), "utf-8")
    return tmp_path


def test_config_errors_name_file_and_key(tts, tmp_path):
    with pytest.raises(PackError, match="format_version"):
        Pack(_write_config(tmp_path, format_version=99))
    with pytest.raises(PackError, match="sample_rate"):
        Pack(_write_config(tmp_path, sample_rate=-1))
    bad = json.loads((_write_config(tmp_path) / "config.json").read_text("utf-8"))
    del bad["symbols"]
    (tmp_path / "config.json").write_text(json.dumps(bad), "utf-8")
    with pytest.raises(PackError, match=r"config\.json.*symbols"):
        Pack(tmp_path)
    (tmp_path / "config.json").write_text("{not json", "utf-8")
    with pytest.raises(PackError, match="unreadable"):
        Pack(tmp_path)


def test_missing_weights_named(tts, tmp_path):
    pack = Pack(_write_config(tmp_path))
    with pytest.raises(PackError, match=r"acoustic\.safetensors"):
        pack.build_stage("acoustic")


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 100, "名字", "baker\x00"])
def test_store_rejects_bad_names(name):
    with pytest.raises(NotFound):
        store.load(name)


def test_unknown_pack_lists_available():
    with pytest.raises(NotFound, match="baker"):
        store.load("nosuchvoice")
