"""Every backend runs a clone pack with per-row d-vectors and emotions, and agrees with the model.

The pack is the tiny random one (``packs/clone/tiny.py``): the real file set and facts,
random weights. One batch mixes what a server batch holds: two cloned voices (arbitrary
d-vectors, as the registry stores them), the pack's default speaker and a named training
speaker (rows of its ``speakers.safetensors``, as the engine resolves ``clone`` and
``clone:<speaker>``), each with its own emotion vector (one-hot, neutral, a soft mix). The
reference is the acoustic model's own ``forward`` and the vocoder's, eager float32.

Random weights speak no words, so there is no ASR check here; these tests check the numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxserve.backends.onnx_export import corr
from voxserve.backends.torch_eager import TorchBackend
from voxserve.engine.batch import SentenceWork, conditioning_tensors, run_acoustic
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.speakers import Speaker
from voxserve.models.interface import Controls
from voxserve.packs.pack import Pack

SENTENCES = ("今天天气很好，我们去公园散步吧。", "Hello, 欢迎使用语音合成。", "谢谢你的帮助。", "Good night.")
EMOTIONS = ("开心", None, {"悲伤": 0.5, "生气": 0.5}, "惊讶")
MEL_CORR = 0.999


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Pack:
    from voxserve.packs.clone.tiny import write_tiny_pack

    return Pack(write_tiny_pack(tmp_path_factory.mktemp("clone") / "clone", name="clone", seed=3))


@pytest.fixture(scope="module")
def torch_voice(pack):
    from voxserve.engine.voice import Voice

    return Voice(pack, TorchBackend())


def _cloned(seed: int) -> np.ndarray:
    """A d-vector as the registry stores one: float32, unit length."""
    v = np.random.default_rng(seed).standard_normal(256).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def speakers(torch_voice) -> list[np.ndarray]:
    """Row speakers as the engine makes them: two cloned voices, the default speaker, tiny_b."""
    v = torch_voice
    return [
        v.speaker_value(Speaker("clone", embedding=_cloned(1), voice_id="voice_a")),
        v.speaker_value(Speaker("clone", embedding=_cloned(2), voice_id="voice_b")),
        v.speaker_value(None),
        v.speaker_value(Speaker("clone", row=v.pack.speaker_row("tiny_b"))),
    ]


@pytest.fixture(scope="module")
def inputs(torch_voice, speakers):
    """A padded batch of real sentences, four speakers, four styles, and varied controls."""
    v = torch_voice
    seqs = [v.frontend.phonemize(s) for s in SENTENCES]
    ids_list = [v.ids(s) for s in seqs]
    lengths = torch.tensor([len(x) for x in ids_list])
    ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.int64)
    for row, x in enumerate(ids_list):
        ids[row, : len(x)] = torch.tensor(x)
    styles = [
        v.style.weights(e)
        if isinstance(e, dict)
        else v.style_vector(SynthesisParams.create(emotion=e), s.text)
        for e, s in zip(EMOTIONS, seqs, strict=True)
    ]
    speaker, style = conditioning_tensors(speakers, styles)
    controls = Controls(
        torch.tensor([1.0, 1.2, 0.9, 1.0]),
        torch.tensor([1.0, 1.1, 1.0, 0.9]),
        torch.ones(4),
        torch.tensor([1.0, 1.0, 1.3, 1.0]),
    )
    return ids, lengths, controls, speaker, style


@pytest.fixture(scope="module")
def reference(pack, inputs):
    """The acoustic model's and the vocoder's own forward, eager float32, fresh from the pack."""
    acoustic, vocoder = pack.build_stage("acoustic"), pack.build_stage("vocoder")
    with torch.inference_mode():
        out = acoustic(*inputs)
        return out, vocoder(out.mel)


def check(out, ref, mel_corr: float = MEL_CORR) -> None:
    assert torch.equal(out.durations, ref.durations) and torch.equal(out.mel_lengths, ref.mel_lengths)
    assert corr(out.mel, ref.mel) >= mel_corr
    torch.testing.assert_close(out.pitch, ref.pitch, atol=1e-4, rtol=0)


def test_rows_are_d_vectors_and_emotion_weights(inputs, pack, speakers):
    from voxserve.engine.conditioning import speaker_vectors

    _, _, _, speaker, style = inputs
    assert speaker.dtype == torch.float32 and speaker.shape == (4, 256)
    table = speaker_vectors(pack)
    np.testing.assert_array_equal(speakers[2], table[0])  # plain "clone": the default speaker's vector
    np.testing.assert_array_equal(speakers[3], table[1])
    assert style.shape == (4, 7) and torch.allclose(style.sum(1), torch.ones(4))
    assert style[1].tolist() == [1, 0, 0, 0, 0, 0, 0]  # neutral 普通
    assert style[2].tolist() == [0, 0.5, 0, 0, 0.5, 0, 0]  # 生气 + 悲伤


def test_pack_builds_the_clone_stages(pack):
    from voxserve.models.clone import Model
    from voxserve.models.clone.vocoder import Model as HiFiGAN

    assert isinstance(pack.build_stage("acoustic"), Model)
    assert isinstance(pack.build_stage("vocoder"), HiFiGAN)


def test_torch_backend_equals_the_model(torch_voice, inputs, reference):
    ref, ref_wav = reference
    backend = torch_voice.backend
    out = backend.acoustic(*inputs)
    check(out, ref)
    torch.testing.assert_close(out.mel, ref.mel, atol=1e-6, rtol=0)
    torch.testing.assert_close(backend.vocoder(ref.mel), ref_wav, atol=1e-6, rtol=0)


def test_each_row_follows_its_own_speaker_and_emotion(torch_voice, inputs):
    """Swapping one row's d-vector or emotion changes that row only: conditioning is per row."""
    ids, lengths, controls, speaker, style = inputs
    base = torch_voice.backend.acoustic(*inputs)
    for swapped_speaker, swapped_style in ((speaker[[1, 0, 2, 3]], style), (speaker, style[[3, 1, 2, 0]])):
        out = torch_voice.backend.acoustic(ids, lengths, controls, swapped_speaker, swapped_style)
        n = min(int(out.mel_lengths[0]), int(base.mel_lengths[0]))
        assert not torch.allclose(out.mel[0, :n], base.mel[0, :n], atol=1e-3)
        assert torch.equal(out.mel_lengths[2], base.mel_lengths[2])
        frames = int(base.mel_lengths[2])
        torch.testing.assert_close(out.mel[2, :frames], base.mel[2, :frames], atol=1e-5, rtol=0)


def test_warmup_takes_the_default_speaker_vector(torch_voice, speakers):
    kw = torch_voice.warmup_inputs()
    np.testing.assert_array_equal(kw["speaker"][0].numpy(), speakers[2])
    assert kw["style"].tolist() == [[1, 0, 0, 0, 0, 0, 0]]
    torch_voice.backend.warmup(**kw)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("clone-onnx")


@pytest.fixture(scope="module")
def onnx_fp32(pack, onnx_cache):
    from voxserve.backends.onnxruntime import OnnxRuntimeBackend

    # unbatch=False: padded batches as one call, like the model's own forward (see test_onnx.py
    # for the per-item path).
    backend = OnnxRuntimeBackend(threads=1, cache_dir=onnx_cache, unbatch=False)
    backend.load(pack)
    return backend


@pytest.fixture(scope="module")
def onnx_int8(pack, onnx_cache, onnx_fp32):  # after fp32: it quantizes that export
    from voxserve.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(threads=1, int8=True, cache_dir=onnx_cache, unbatch=False)
    backend.load(pack)
    return backend


@pytest.fixture(scope="module")
def cuda_on_cpu(pack):
    """The CUDA backend's stage plan, static buffers and padding, without graphs, float32 on the CPU."""
    from voxserve.backends.cuda import CudaBackend

    backend = CudaBackend(
        device="cpu", dtype="fp32", graphs=False, batch_buckets=(1, 4, 8), token_buckets=(64,)
    )
    backend.load(pack)
    return backend


def test_onnx_export_declares_the_clone_inputs(onnx_fp32):
    assert onnx_fp32.inputs["encoder"] == ("ids", "lengths", "controls", "speaker", "style")
    facts = onnx_fp32.facts
    assert (facts["speaker_dim"], facts["style_dim"], facts["hop_length"]) == (256, 7, 256)
    import json

    figures = json.loads((onnx_fp32.directory / "manifest.json").read_text())["verification"]["random"]
    assert figures["durations_equal"] == 1.0 and figures["mel_corr"] >= 0.99999


@pytest.mark.parametrize("which", ["onnx_fp32", "onnx_int8"])
def test_onnxruntime_matches_the_model(request, which, inputs, reference):
    backend = request.getfixturevalue(which)
    ref, ref_wav = reference
    out = backend.acoustic(*inputs)
    check(out, ref)
    if which == "onnx_fp32":
        torch.testing.assert_close(out.mel, ref.mel, atol=1e-4, rtol=0)
        torch.testing.assert_close(backend.vocoder(ref.mel), ref_wav, atol=1e-5, rtol=0)
    else:
        assert "int8" in backend.files["decoder"].name


def test_cuda_backend_code_path_on_the_cpu(cuda_on_cpu, inputs, reference):
    ref, ref_wav = reference
    out = cuda_on_cpu.acoustic(*inputs)
    check(out, ref)
    torch.testing.assert_close(out.mel, ref.mel, atol=1e-5, rtol=0)
    wav = cuda_on_cpu.vocoder(ref.mel)  # padded with zero frames to its bucket
    # Equal but for the last frames, whose receptive field reaches into the bucket's padding.
    edge = 8 * cuda_on_cpu.hop_length
    torch.testing.assert_close(wav[:, :-edge], ref_wav[:, :-edge], atol=1e-5, rtol=0)
    torch.testing.assert_close(wav, ref_wav, atol=1e-3, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_cuda_matches_the_model_on_gpu(pack, inputs, reference, dtype):
    from voxserve.backends.cuda import CudaBackend

    ref, ref_wav = reference
    backend = CudaBackend(dtype=dtype, batch_buckets=(1, 4), token_buckets=(32, 64), frame_buckets=(256, 512))
    backend.load(pack)
    backend.warmup()
    out = backend.acoustic(*inputs)
    check(out, ref, mel_corr=0.999 if dtype == "fp16" else 0.99999)
    wav = backend.vocoder(ref.mel)
    assert wav.shape == ref_wav.shape
    torch.testing.assert_close(wav, ref_wav, atol=1e-3, rtol=0)


@pytest.mark.parametrize("which", ["torch", "onnx_fp32", "cuda_on_cpu"])
def test_batched_rows_equal_alone(request, which, torch_voice, inputs):
    backend = torch_voice.backend if which == "torch" else request.getfixturevalue(which)
    ids, lengths, controls, speaker, style = inputs
    out = backend.acoustic(*inputs)
    for row in range(ids.shape[0]):
        n = int(lengths[row])
        one = Controls(*(c[row : row + 1] for c in controls))
        alone = backend.acoustic(
            ids[row : row + 1, :n], lengths[row : row + 1], one, speaker[row : row + 1], style[row : row + 1]
        )
        assert torch.equal(out.durations[row, :n], alone.durations[0])
        frames = int(alone.mel_lengths[0])
        np.testing.assert_allclose(out.mel[row, :frames], alone.mel[0], atol=1e-4)


def test_engine_batch_of_cloned_and_pack_speakers(torch_voice, speakers):
    """``run_acoustic`` (the scheduler's acoustic step) takes each work item's own d-vector and style."""
    v = torch_voice
    ids = tuple(v.ids(v.frontend.phonemize(SENTENCES[0])))
    neutral = (1.0, 1.0, 1.0, 1.0)
    styles = [v.style.weights({e: 1.0}) for e in ("开心", "悲伤", "普通", "恐惧")]
    works = [SentenceWork(ids, neutral, speaker=s, style=st) for s, st in zip(speakers, styles, strict=True)]
    batched = run_acoustic(v.backend, works)
    for work, got in zip(works, batched, strict=True):
        (alone,) = run_acoustic(v.backend, [work])
        np.testing.assert_array_equal(got.durations, alone.durations)
        torch.testing.assert_close(got.mel, alone.mel, atol=1e-5, rtol=0)
    # Same text, four voices: four different outputs.
    for a in range(4):
        for b in range(a + 1, 4):
            n = min(len(batched[a].mel), len(batched[b].mel))
            assert not torch.allclose(batched[a].mel[:n], batched[b].mel[:n], atol=1e-3)
