"""The GE2E speaker encoder: parity with Resemblyzer's own, windowing, front end, weight loading."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

from voxserve.cloning.encoder import SpeakerEncoder, default_weights, partial_starts, read_state
from voxserve.errors import InvalidInput, PackError
from voxserve.models.speaker_encoder import Config, Model, slaney_mel_filters


def _resemblyzer():
    """Resemblyzer's own encoder, or a skip when it or its dependencies (librosa, webrtcvad, scipy) are missing."""
    for dep in ("librosa", "webrtcvad", "scipy"):
        pytest.importorskip(dep, reason=f"parity test needs {dep} (resemblyzer's dependency)")
    resemblyzer = pytest.importorskip("resemblyzer")
    return resemblyzer.VoiceEncoder("cpu", verbose=False)


@pytest.fixture(scope="module")
def reference_encoder():
    return _resemblyzer()


def test_embedding_matches_resemblyzer(encoder, speech, reference_encoder):
    # Same 16 kHz samples into both: lengths that give one partial, several, and a dropped last one.
    clip = np.concatenate(speech[:2])
    for n in (8000, 40000, clip.size):
        ours = encoder.embed_partials(clip[:n])
        utterance, theirs, _ = reference_encoder.embed_utterance(clip[:n], return_partials=True)
        assert ours.shape == theirs.shape, n
        assert np.min(np.sum(ours * theirs, axis=1)) >= 0.999, n
        assert float(encoder.embed(clip[:n]) @ utterance) >= 0.999, n


def test_mel_filters_match_librosa():
    librosa = pytest.importorskip("librosa")
    ours = slaney_mel_filters(16000, 400, 40)
    theirs = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-7)


def test_embedding_is_a_unit_float32_vector(encoder, speech):
    e = encoder.embed(speech[0])
    assert e.shape == (256,) and e.dtype == np.float32
    assert abs(float(np.linalg.norm(e)) - 1.0) < 1e-5 and (e >= 0).all()


def test_embed_many_is_the_normalized_mean(encoder, speech):
    each = [encoder.embed(s) for s in speech[:2]]
    mean = (each[0] + each[1]) / np.linalg.norm(each[0] + each[1])
    np.testing.assert_allclose(encoder.embed_many(speech[:2]), mean, atol=1e-6)


def test_same_speaker_is_closer_than_a_pitch_shifted_one(encoder, speech):
    from voxserve.cloning.audio import resample

    a, b = encoder.embed(speech[0]), encoder.embed(speech[1])
    # Playing 16 kHz audio as if it were 12 kHz lowers pitch and formants: a "different" speaker.
    lowered = encoder.embed(resample(speech[1], 12000, 16000))
    assert float(a @ b) > float(a @ lowered) + 0.05


def test_partial_windowing():
    cfg = Config()
    assert cfg.frame_step == 77
    assert partial_starts(100, cfg) == [0]
    assert partial_starts(160 * 160, cfg) == [0]
    # 3 s: frames 0..300; partials start every 77 frames while they still reach the end.
    starts = partial_starts(48000, cfg)
    assert starts[:3] == [0, 77, 154] and all(b - a == 77 for a, b in itertools.pairwise(starts))
    last = starts[-1]
    assert (48000 - last * 160) / (160 * 160) >= cfg.min_coverage


def test_embed_rejects_empty_and_multichannel(encoder):
    with pytest.raises(InvalidInput):
        encoder.embed(np.zeros(0, dtype=np.float32))
    with pytest.raises(InvalidInput):
        encoder.embed(np.zeros((2, 16000), dtype=np.float32))


def test_load_is_cached():
    assert SpeakerEncoder.load() is SpeakerEncoder.load(default_weights())


def test_read_state_names_the_missing_tensor(tmp_path):
    state = Model().state_dict()
    del state["linear.bias"]
    path = tmp_path / "w.pt"
    torch.save({"model_state": state}, path)
    with pytest.raises(PackError, match=r"linear\.bias"):
        read_state(path, Model())


def test_read_state_names_a_wrong_shape(tmp_path):
    state = Model().state_dict()
    state["linear.weight"] = torch.zeros(3, 3)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(PackError, match=r"linear.weight has shape \(3, 3\)"):
        read_state(path, Model())


class _Payload:
    def __reduce__(self):  # would run a command if the file were plainly unpickled
        return (print, ("unpickled!",))


def test_read_state_refuses_arbitrary_pickles(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"model_state": _Payload()}, f)
    with pytest.raises(PackError, match="cannot read"):
        read_state(path, Model())
    assert "unpickled!" not in capsys.readouterr().out


def test_safetensors_weights_give_the_same_embedding(tmp_path, encoder, speech):
    from safetensors.torch import save_file

    path = tmp_path / "ge2e.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.model.state_dict().items()}, str(path))
    other = SpeakerEncoder.load(path)
    assert other is not encoder
    np.testing.assert_allclose(other.embed(speech[0]), encoder.embed(speech[0]), atol=1e-6)
