"""EmotiVoice model family: config validation, release key layout, determinism, batching, controls."""

from __future__ import annotations

import pytest
import torch

from voxserve.errors import PackError
from voxserve.models.emotivoice import Config, Model
from voxserve.models.interface import Controls
from voxserve.packs.emotivoice.layout import SMALL_CONFIG, random_model
from voxserve.packs.emotivoice.release import legacy_to_parametrized

C = SMALL_CONFIG
LENGTHS = (14, 5, 9)


@pytest.fixture(scope="module")
def model() -> Model:
    with torch.random.fork_rng():
        return random_model(C, seed=3)


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    b, t = len(LENGTHS), max(LENGTHS)
    ids = torch.randint(1, C.n_vocab, (b, t), generator=g)
    lengths = torch.tensor(LENGTHS)
    ids[torch.arange(t)[None, :] >= lengths[:, None]] = 0
    return {
        "ids": ids,
        "lengths": lengths,
        "speaker": torch.tensor([0, 5, 2]),
        "style": torch.randn(b, C.bert_dim, generator=g),
        "content": torch.randn(b, C.bert_dim, generator=g),
    }


def run(model: Model, inputs: dict[str, torch.Tensor], controls: Controls | None = None):
    b = inputs["ids"].shape[0]
    with torch.inference_mode():
        return model(
            inputs["ids"],
            inputs["lengths"],
            controls or Controls.neutral(b),
            inputs["speaker"],
            inputs["style"],
            inputs["content"],
        )


def item(inputs: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    n = int(inputs["lengths"][i])
    out = {k: v[i : i + 1] for k, v in inputs.items()}
    out["ids"] = out["ids"][:, :n]
    return out


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


# --- config -------------------------------------------------------------------------------------


def test_config_defaults_are_the_release() -> None:
    c = Config()
    assert (c.hidden, c.encoder_layers, c.decoder_layers, c.encoder_heads, c.decoder_heads) == (
        384,
        4,
        4,
        8,
        8,
    )
    assert (c.duration_layers, c.pitch_layers, c.energy_layers) == (2, 3, 2)
    assert (c.sample_rate, c.n_mels, c.hop_length, c.bert_dim) == (16000, 80, 256, 768)
    assert c.upsample_rates == (8, 8, 2, 2) and c.upsample_initial_channel == 512
    assert c.resblock_kernel_sizes == (3, 7, 11)
    assert (c.n_vocab, c.n_speakers) == (502, 2014)


def test_config_round_trips_through_dict() -> None:
    assert Config.from_dict(C.to_dict()) == C
    assert Config.from_dict({}) == Config()


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"hiden": 3}, "hiden"),
        ({"hidden": "384"}, "hidden"),
        ({"hidden": True}, "hidden"),
        ({"encoder_heads": 5}, "encoder_heads"),
        ({"hop_length": 200}, "hop_length"),
        ({"pitch_kernel": 4}, "pitch_kernel"),
        ({"resblock_dilation_sizes": [[1, 3, 5]]}, "resblock_dilation_sizes"),
        ({"pitch_stats": [225.0]}, "pitch_stats"),
    ],
)
def test_config_errors_name_the_key(patch: dict, key: str) -> None:
    with pytest.raises(PackError, match=key):
        Config.from_dict(patch, where="x.json")


# --- release layout -------------------------------------------------------------------------------


def test_state_dict_has_release_names_and_shapes() -> None:
    with torch.device("meta"):
        sd = Model(Config()).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["am.encoder.embed.0.alpha"] == ()
    assert shapes["am.encoder.encoders.3.feed_forward.w_1.weight"] == (1536, 384, 3)
    assert shapes["am.decoder.encoders.3.self_attn.linear_out.weight"] == (384, 384)
    assert shapes["am.pitch_predictor.conv.2.2.weight"] == (384,)  # third layer's LayerNorm
    assert "am.energy_predictor.conv.2.0.weight" not in shapes  # energy has 2 layers
    assert shapes["am.pitch_embed.0.weight"] == (384, 1, 9)
    assert shapes["am.alignment_module.f_conv1.weight"] == (384, 80, 3)
    assert shapes["am.embed_projection1.weight"] == (384, 2 * 384 + 2 * 768)
    assert shapes["am.spk_tokenizer.weight"] == (2014, 384)
    assert shapes["am.src_word_emb.weight"] == (502, 384)
    assert shapes["generator.conv_pre.parametrizations.weight.original1"] == (512, 80, 7)
    assert shapes["generator.ups.0.parametrizations.weight.original0"] == (512, 1, 1)
    assert shapes["generator.resblocks.11.convs2.2.parametrizations.weight.original1"] == (32, 32, 11)
    assert not any(k.endswith(".pe") for k in shapes)  # the position table is not a weight


def test_full_size_parameter_counts() -> None:
    with torch.device("meta"):
        m = Model(Config())
    am = sum(p.numel() for p in m.am.parameters())
    voc = sum(p.numel() for p in m.generator.parameters())
    assert am == 39_340_885  # the anchors' "39 M acoustic"
    assert voc == 13_936_130  # and "14 M HiFi-GAN"


def test_legacy_weight_norm_keys_load_and_agree(model: Model, inputs: dict) -> None:
    legacy = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in model.state_dict().items()
    }
    assert any(k.endswith("weight_g") for k in legacy)
    other = Model(C).eval()
    other.load_state_dict(legacy, strict=True)  # PyTorch's weight-norm hook renames on load
    assert legacy_to_parametrized(legacy).keys() == model.state_dict().keys()
    assert torch.equal(run(other, inputs).wav, run(model, inputs).wav)


# --- behaviour ------------------------------------------------------------------------------------


def test_deterministic_and_shapes(model: Model, inputs: dict) -> None:
    a, b = run(model, inputs), run(model, inputs)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(a.mel_lengths, a.durations.sum(1))
    assert a.mel.shape == (3, int(a.mel_lengths.max()), C.n_mels)
    assert a.wav.shape == (3, a.mel.shape[1] * C.hop_length)
    assert torch.equal(a.wav_lengths, a.mel_lengths * C.hop_length)
    for i, n in enumerate(LENGTHS):
        assert (a.durations[i, n:] == 0).all() and (a.durations[i, :n] > 0).any()
        assert (a.mel[i, a.mel_lengths[i] :] == 0).all()
    assert a.wav.abs().max() <= 1.0


def test_each_batch_item_equals_its_unbatched_run(model: Model, inputs: dict) -> None:
    batch = run(model, inputs)
    for i in range(len(LENGTHS)):
        one = run(model, item(inputs, i))
        n, f = LENGTHS[i], int(one.mel_lengths[0])
        assert torch.equal(batch.durations[i, :n], one.durations[0])
        assert int(batch.mel_lengths[i]) == f
        assert corr(batch.mel[i, :f], one.mel[0]) >= 0.9999
        torch.testing.assert_close(batch.pitch[i, :n], one.pitch[0], atol=1e-4, rtol=1e-4)
        # Away from the item's end the vocoder does not see the padding.
        safe = (f - 8) * C.hop_length
        assert corr(batch.wav[i, :safe], one.wav[0, :safe]) >= 0.999


def test_stages_compose_to_forward(model: Model, inputs: dict) -> None:
    full = run(model, inputs)
    with torch.inference_mode():
        h = model.encode(
            inputs["ids"], inputs["lengths"], inputs["speaker"], inputs["style"], inputs["content"]
        )
        a = model.adapt(h, inputs["lengths"], Controls.neutral(3))
        mel = model.decode(a.frames, a.mel_lengths)
        wav = model.vocode(mel)
    assert h.shape == (3, max(LENGTHS), C.hidden)
    assert torch.equal(mel, full.mel) and torch.equal(wav, full.wav)


def test_acoustic_interface_takes_style_and_content_concatenated(model: Model, inputs: dict) -> None:
    full = run(model, inputs)
    style = torch.cat([inputs["style"], inputs["content"]], dim=-1)
    with torch.inference_mode():
        out = model.am(inputs["ids"], inputs["lengths"], Controls.neutral(3), inputs["speaker"], style)
    assert torch.equal(out.mel, full.mel) and torch.equal(out.durations, full.durations)
    with pytest.raises(ValueError, match="speaker"):
        model.am(inputs["ids"], inputs["lengths"], Controls.neutral(3))


def test_conditioning_matters(model: Model, inputs: dict) -> None:
    def am(x: dict) -> torch.Tensor:
        with torch.inference_mode():
            h = model.encode(x["ids"], x["lengths"], x["speaker"], x["style"], x["content"])
            return model.adapt(h, x["lengths"], Controls.neutral(1)).pitch

    base = am(item(inputs, 0))
    for key in ("speaker", "style", "content"):
        changed = dict(item(inputs, 0))
        changed[key] = changed[key] + 1 if key == "speaker" else -changed[key]
        assert not torch.equal(am(changed), base), key


def test_fold_weight_norm_keeps_output(inputs: dict) -> None:
    with torch.random.fork_rng():
        m = random_model(C, seed=3)
    before = run(m, inputs).wav
    m.fold_weight_norm()
    assert "generator.conv_pre.weight" in m.state_dict()
    torch.testing.assert_close(run(m, inputs).wav, before, atol=1e-5, rtol=0)


# --- controls -------------------------------------------------------------------------------------


def controls(b: int, **values: float) -> Controls:
    base = Controls.neutral(b)._asdict()
    base.update({k: torch.full((b,), v) for k, v in values.items()})
    return Controls(**base)


def test_duration_control_stretches_frames(model: Model, inputs: dict) -> None:
    one = item(inputs, 0)
    base = run(model, one)
    slow = run(model, one, controls(1, duration=2.0))
    fast = run(model, one, controls(1, duration=0.5))
    assert slow.mel_lengths[0] > 1.8 * base.mel_lengths[0]
    assert fast.mel_lengths[0] < 0.6 * base.mel_lengths[0]
    # Other predictions are untouched by the duration control.
    assert torch.equal(slow.pitch, base.pitch)


def test_pitch_and_energy_controls_act_in_hz_units(model: Model, inputs: dict) -> None:
    one = item(inputs, 1)
    p_mean, p_std = C.pitch_stats
    e_mean, e_std = C.energy_stats
    base = run(model, one)
    up = run(model, one, controls(1, pitch=1.5, energy=0.5))
    hz, up_hz = base.pitch * p_std + p_mean, up.pitch * p_std + p_mean
    torch.testing.assert_close(up_hz, 1.5 * hz, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(
        up.energy * e_std + e_mean, 0.5 * (base.energy * e_std + e_mean), atol=1e-3, rtol=1e-5
    )
    flat = run(model, one, controls(1, pitch_range=0.0))
    assert torch.allclose(flat.pitch, flat.pitch.mean().expand_as(flat.pitch), atol=1e-5)
    torch.testing.assert_close(flat.pitch.mean(), base.pitch.mean(), atol=1e-5, rtol=0)
    assert not torch.equal(up.mel, base.mel)
