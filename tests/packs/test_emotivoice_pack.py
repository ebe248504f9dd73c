"""EmotiVoice release → pack: strict conversion, faithful loading, style embeddings, and precise errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from voxserve.errors import PackError
from voxserve.models.emotivoice import Config
from voxserve.models.interface import Controls
from voxserve.packs.emotivoice import release as rl
from voxserve.packs.emotivoice.convert import convert_emotivoice, load_emotivoice_pack
from voxserve.packs.emotivoice.layout import EMOTIONS, SMALL_CONFIG, write_random_release
from voxserve.packs.pack import Pack

pytest.importorskip("transformers")

G_FILE = rl.GENERATOR_DIR / rl.GENERATOR_NAME
STYLE_FILE = rl.STYLE_DIR / rl.STYLE_NAME


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_release(tmp_path_factory.mktemp("release"), small=True, seed=1)


@pytest.fixture(scope="module")
def pack(release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_emotivoice(release, tmp_path_factory.mktemp("packs") / "ev", name="ev-test")


@pytest.fixture(scope="module")
def loaded(pack: Path):
    return load_emotivoice_pack(pack, fold_weight_norm=False)


@pytest.fixture
def broken(release: Path, tmp_path: Path) -> Path:
    """A private copy of the release that a test may damage."""
    return Path(shutil.copytree(release, tmp_path / "release"))


def test_pack_config_holds_the_facts(release: Path, pack: Path) -> None:
    facts = json.loads((pack / "config.json").read_text(encoding="utf-8"))
    assert facts["family"] == "emotivoice" and facts["format_version"] == 1 and facts["name"] == "ev-test"
    assert (facts["sample_rate"], facts["hop_length"], facts["mel"]["n_mels"]) == (16000, 256, 80)
    assert facts["frontend"] == "emotivoice"
    text = release / rl.TEXT_DIR
    assert facts["symbols"] == (text / "tokenlist").read_text(encoding="utf-8").split()
    assert facts["speakers"] == (text / "speaker2").read_text(encoding="utf-8").split()
    assert facts["emotions"] == ["普通", "生气", "开心", "惊讶", "悲伤", "厌恶", "恐惧"] == list(EMOTIONS)
    assert facts["prompts"]["pitch"] == ["音调普通", "音调很高", "音调很低"]
    assert Config.from_dict(facts["acoustic"]["config"]) == SMALL_CONFIG
    assert facts["acoustic"]["weights"] == "model.safetensors"
    for name in rl.LISTS:
        assert (pack / "text" / name).read_text(encoding="utf-8") == (text / name).read_text(encoding="utf-8")
    assert {p.name for p in (pack / "bert").iterdir()} == {
        "config.json",
        "vocab.txt",
    }  # BERT weights superseded
    assert len(facts["source"]["generator"]["sha256"]) == 64
    assert Pack(pack).config.name == "ev-test"  # the generic pack reader accepts it too


def test_model_weights_equal_the_release_checkpoint(release: Path, loaded) -> None:
    ckpt = torch.load(release / G_FILE, map_location="cpu", weights_only=True)["generator"]
    state = loaded.model.state_dict()
    assert state.keys() == ckpt.keys()
    for key, value in ckpt.items():
        assert torch.equal(state[key], value), key


def test_style_weights_equal_the_release_checkpoint(release: Path, loaded) -> None:
    ckpt = torch.load(release / STYLE_FILE, map_location="cpu", weights_only=True)["model"]
    state = loaded.style.encoder.state_dict()
    assert {"module." + k for k in state} == set(ckpt) - {"module.bert.embeddings.position_ids"}
    for key, value in state.items():
        assert torch.equal(value, ckpt["module." + key]), key


def test_style_embedding_is_the_bert_pooler_and_cached(pack: Path, loaded) -> None:
    from transformers import BertModel, BertTokenizerFast

    style = loaded.style
    a = style.embed(["开心", "音调很高", "开心"])
    assert a.shape == (3, SMALL_CONFIG.bert_dim) and torch.equal(a[0], a[2])
    # Independent path: a plain BertModel with the pack's BERT weights, one text at a time.
    bert = BertModel(style.encoder.bert.config).eval()
    bert.load_state_dict(style.encoder.bert.state_dict())
    tok = BertTokenizerFast.from_pretrained(str(pack / "bert"), local_files_only=True)
    for i, text in enumerate(["开心", "音调很高"]):
        with torch.inference_mode():
            ref = bert(**tok([text], return_tensors="pt")).pooler_output[0]
        torch.testing.assert_close(a[i], ref, atol=1e-5, rtol=1e-5)
    assert style.cache_info()["size"] == 2
    assert torch.equal(style.embed(["音调很高"])[0], a[1])


def test_style_cache_evicts_least_recent(pack: Path) -> None:
    ev = load_emotivoice_pack(pack, cache_size=2)
    first = ev.style.embed(["生气"])
    ev.style.embed(["开心", "悲伤", "开心"])
    assert ev.style.cache_info() == {"size": 2, "max": 2}
    torch.testing.assert_close(ev.style.embed(["生气"]), first)  # recomputed after eviction, same value


def test_loaded_pack_synthesizes_deterministically(loaded) -> None:
    emb = loaded.style.embed(["开心", "今天天气很好"])
    ids = torch.tensor([[1, 5, 9, 12, 30, 1]])
    args = (ids, torch.tensor([6]), Controls.neutral(1), torch.tensor([2]), emb[:1], emb[1:])
    with torch.inference_mode():
        a, b = loaded.model(*args), loaded.model(*args)
    assert torch.equal(a.wav, b.wav) and a.wav.shape[1] == int(a.mel_lengths[0]) * 256


def test_folded_pack_sounds_the_same(pack: Path, loaded) -> None:
    folded = load_emotivoice_pack(pack)  # default: weight norm baked in
    assert "generator.conv_pre.weight" in folded.model.state_dict()
    mel = torch.randn(1, 12, 80)
    with torch.inference_mode():
        torch.testing.assert_close(folded.model.vocode(mel), loaded.model.vocode(mel), atol=1e-5, rtol=0)


def test_legacy_weight_norm_release_converts_to_the_same_pack(pack: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    legacy = write_random_release(tmp_path / "legacy", small=True, seed=1, legacy_weight_norm=True)
    ckpt = torch.load(legacy / G_FILE, weights_only=True)["generator"]
    assert any(k.endswith(".weight_g") for k in ckpt)
    out = convert_emotivoice(legacy, tmp_path / "pack")
    a, b = load_file(str(out / "model.safetensors")), load_file(str(pack / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_writer_is_seeded_and_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    write_random_release(tmp_path / "a", small=True, seed=4)
    assert torch.equal(torch.rand(3), expected)
    write_random_release(tmp_path / "b", small=True, seed=4)
    a = torch.load(tmp_path / "a" / G_FILE, weights_only=True)["generator"]
    b = torch.load(tmp_path / "b" / G_FILE, weights_only=True)["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- malformed releases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    [
        G_FILE,
        STYLE_FILE,
        rl.TEXT_DIR / "tokenlist",
        rl.TEXT_DIR / "emotion",
        rl.BERT_DIR / "vocab.txt",
        rl.BERT_DIR / "config.json",
    ],
)
def test_missing_file_is_named(broken: Path, tmp_path: Path, missing: Path) -> None:
    (broken / missing).unlink()
    out = tmp_path / "out"
    with pytest.raises(PackError, match=missing.name):
        convert_emotivoice(broken, out)
    assert not out.exists()


def _edit_generator(release: Path, edit) -> None:
    path = release / G_FILE
    ckpt = torch.load(path, weights_only=True)
    edit(ckpt["generator"])
    torch.save(ckpt, path)


def test_renamed_key_is_named(broken: Path, tmp_path: Path) -> None:
    _edit_generator(broken, lambda s: s.__setitem__("am.to_mel.weights", s.pop("am.to_mel.weight")))
    with pytest.raises(PackError, match=r"g_00140000: missing key 'am\.to_mel\.weight'"):
        convert_emotivoice(broken, tmp_path / "out")


def test_extra_key_is_named(broken: Path, tmp_path: Path) -> None:
    _edit_generator(broken, lambda s: s.__setitem__("am.postnet.weight", torch.zeros(3)))
    with pytest.raises(PackError, match=r"g_00140000: unexpected key 'am\.postnet\.weight'"):
        convert_emotivoice(broken, tmp_path / "out")


def test_wrong_shape_is_named(broken: Path, tmp_path: Path) -> None:
    _edit_generator(broken, lambda s: s.__setitem__("am.to_mel.weight", torch.zeros(80, 7)))
    with pytest.raises(PackError, match=r"g_00140000: key 'am\.to_mel\.weight' has shape \[80, 7\]"):
        convert_emotivoice(broken, tmp_path / "out")


def test_tokenlist_disagreeing_with_the_table_names_both(broken: Path, tmp_path: Path) -> None:
    with (broken / rl.TEXT_DIR / "tokenlist").open("a", encoding="utf-8") as f:
        f.write("extra_symbol\n")
    with pytest.raises(PackError, match=r"g_00140000.*src_word_emb.*tokenlist"):
        convert_emotivoice(broken, tmp_path / "out")


def test_duplicate_speaker_is_named(broken: Path, tmp_path: Path) -> None:
    with (broken / rl.TEXT_DIR / "speaker2").open("a", encoding="utf-8") as f:
        f.write("1000\n")
    with pytest.raises(PackError, match=r"speaker2: duplicate entry '1000'"):
        convert_emotivoice(broken, tmp_path / "out")


def test_pickled_objects_are_refused(broken: Path, tmp_path: Path) -> None:
    path = broken / G_FILE
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"] = Path("not/a/tensor")  # an arbitrary object: only a full unpickler could read it
    torch.save(ckpt, path)
    with pytest.raises(PackError, match="g_00140000: cannot be read as a weights-only"):
        convert_emotivoice(broken, tmp_path / "out")


def test_style_checkpoint_shape_mismatch_is_named(broken: Path, tmp_path: Path) -> None:
    path = broken / STYLE_FILE
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"]["module.emotion_clf.classifier.weight"] = torch.zeros(5, SMALL_CONFIG.bert_dim)
    torch.save(ckpt, path)
    with pytest.raises(
        PackError, match=r"checkpoint_163431: key 'emotion_clf\.classifier\.weight' has shape"
    ):
        convert_emotivoice(broken, tmp_path / "out")


def test_style_checkpoint_extra_head_is_ignored_and_recorded(broken: Path, tmp_path: Path) -> None:
    path = broken / STYLE_FILE
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"]["module.speaker_clf.classifier.weight"] = torch.zeros(4, SMALL_CONFIG.bert_dim)
    torch.save(ckpt, path)
    out = convert_emotivoice(broken, tmp_path / "out")
    facts = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert facts["source"]["style_encoder"]["ignored_keys"] == ["speaker_clf.classifier.weight"]


def test_bad_yaml_value_names_file_and_key(broken: Path, tmp_path: Path) -> None:
    path = broken / rl.YAML
    path.write_text(
        path.read_text(encoding="utf-8").replace("encoder_n_heads: 2", "encoder_n_heads: 3"), "utf-8"
    )
    with pytest.raises(PackError, match=r"config\.yaml.*encoder_heads"):
        convert_emotivoice(broken, tmp_path / "out")


def test_loading_a_damaged_pack_names_the_file(pack: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    copy = Path(shutil.copytree(pack, tmp_path / "pack"))
    state = load_file(str(copy / "model.safetensors"))
    del state["am.to_mel.bias"]
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(PackError, match=r"model\.safetensors.*am\.to_mel\.bias"):
        load_emotivoice_pack(copy)


@pytest.mark.slow
def test_full_size_release_converts_with_the_release_parameter_counts(tmp_path: Path) -> None:
    release = write_random_release(tmp_path / "release", seed=0)
    ev = load_emotivoice_pack(convert_emotivoice(release, tmp_path / "pack"), fold_weight_norm=False)
    assert sum(p.numel() for p in ev.model.am.parameters()) == 39_340_885
    assert sum(p.numel() for p in ev.model.generator.parameters()) == 13_936_130
    bert = ev.style.encoder.bert.config
    assert (bert.hidden_size, bert.num_hidden_layers, bert.vocab_size) == (768, 12, 13685)
    assert len(ev.facts["symbols"]) == 502 and len(ev.facts["speakers"]) == 2014
    assert ev.style.embed(["开心"]).shape == (1, 768)
