"""CUDA backend: bucket logic on the CPU (fake capture, no graphs), parity and batching on a GPU."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from voxserve.backends.cuda import CudaBackend
from voxserve.backends.cuda_graphs import Buckets, FlatBuffer, GraphTable, check_buckets, pick
from voxserve.errors import InvalidInput
from voxserve.models.interface import Controls

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


def batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.int64)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
    return ids, lengths


# --- buckets and tables (no device) ---------------------------------------------------------------


def test_pick_takes_the_smallest_bucket_that_fits():
    assert pick((1, 2, 4), 1) == 1
    assert pick((1, 2, 4), 3) == 4
    assert pick((1, 2, 4), 4) == 4
    assert pick((1, 2, 4), 5) is None


def test_select_pads_up_and_refuses_past_the_table_or_cap():
    b = Buckets((1, 2, 4), (16, 32, 64), max_cells=128)
    assert b.select(1, 1) == (1, 16)
    assert b.select(3, 17) == (4, 32)
    assert b.select(2, 0) == (2, 16)  # an empty item still needs one column
    assert b.select(5, 10) is None  # past the largest batch
    assert b.select(1, 65) is None  # past the longest length
    assert b.select(4, 33) is None  # (4, 64) is over the cap
    assert b.allows((2, 64)) and not b.allows((4, 64)) and not b.allows((3, 16))


def test_keys_are_largest_first_and_respect_the_cap():
    keys = Buckets((1, 2, 4), (16, 32, 64), max_cells=128).keys()
    assert (4, 64) not in keys and len(keys) == 8
    cells = [b * n for b, n in keys]
    assert cells == sorted(cells, reverse=True)
    assert keys[0] == (4, 32)  # 128 cells, larger batch first among ties
    assert Buckets((1, 2), (8, 16)).max_cells_used() == 32


@pytest.mark.parametrize("bad", [(), (0, 1), (1.5,), (True,), "ab"])
def test_check_buckets_names_the_parameter(bad):
    with pytest.raises(InvalidInput) as e:
        check_buckets("frame_buckets", bad)
    assert e.value.param == "frame_buckets"
    assert check_buckets("x", [4, 1, 4, 2]) == (1, 2, 4)


def test_flat_buffer_views_are_contiguous_and_share_memory():
    buf = FlatBuffer(24, torch.float32, torch.device("cpu"))
    a, b = buf.view(2, 3, 4), buf.view(3, 8)
    assert a.is_contiguous() and b.is_contiguous()
    a.fill_(7.0)
    assert (b == 7.0).all()
    with pytest.raises(ValueError):
        buf.view(5, 5)


def test_graph_table_replays_captured_keys_and_steps_the_rest():
    calls: list[tuple[str, tuple[int, int]]] = []
    captured: list[tuple[int, int]] = []

    def step(key):
        calls.append(("step", key))

    def fake_capture(thunk):
        thunk()  # the warm-up run
        key = calls[-1][1]
        captured.append(key)
        return lambda: calls.append(("replay", key))

    table = GraphTable("test", step)
    keys = Buckets((1, 2), (8, 16)).keys()
    stats = table.capture(keys, fake_capture)
    assert stats.graphs == 4 and captured == keys and len(table) == 4
    assert table.capture(keys, fake_capture).graphs == 0  # nothing captured twice
    calls.clear()
    table.run((2, 8))
    table.run((4, 8))  # not in the table: stepped eagerly
    assert calls == [("replay", (2, 8)), ("step", (4, 8))]


def test_options_are_validated():
    with pytest.raises(InvalidInput) as e:
        CudaBackend(device="cpu", dtype="fp8", graphs=False)
    assert e.value.param == "dtype"
    with pytest.raises(InvalidInput) as e:
        CudaBackend(device="cpu", graphs=True)
    assert e.value.param == "device"
    with pytest.raises(InvalidInput) as e:
        CudaBackend(device="cpu", graphs=False, batch_buckets=())
    assert e.value.param == "batch_buckets"


def test_registry_builds_it_and_it_exposes_batch_buckets():
    from voxserve.backends.registry import create

    backend = create("cuda", device="cpu", graphs=False, batch_buckets=(4, 1, 2))
    assert isinstance(backend, CudaBackend) and backend.batch_buckets == (1, 2, 4)


# --- the padded stages on the CPU (graphs off, float32): same results as the models --------------


def tiny_fastspeech2():
    from voxserve.models.fastspeech2 import Config, Model

    torch.manual_seed(0)
    cfg = Config(
        vocab_size=20,
        hidden=16,
        heads=2,
        head_dim=4,
        encoder_layers=1,
        decoder_layers=1,
        ffn_dim=32,
        max_positions=512,
        variance_channels=8,
        n_mels=6,
        postnet_channels=8,
        postnet_layers=3,
    )
    model = Model(cfg).eval()
    with torch.no_grad():  # durations of a few frames, varying with the symbol
        model.duration.out.weight.mul_(0.3)
        model.duration.out.bias.fill_(1.5)
    return model


def tiny_mbmelgan():
    from voxserve.models.mbmelgan import Config, Model

    torch.manual_seed(1)
    cfg = Config(
        n_mels=6,
        channels=16,
        kernel_size=7,
        upsample_scales=(2, 3),
        stack_dilations=(1, 3),
        subbands=2,
        pqmf_taps=15,
        hop_length=12,
        sample_rate=8000,
    )
    model = Model(cfg).eval()
    with torch.no_grad():
        model.pqmf.filters.normal_(0, 0.1)
    return model


SMALL = {"batch_buckets": (1, 2, 4), "token_buckets": (8, 16), "frame_buckets": (16, 32, 64)}


@pytest.fixture(scope="module")
def fs2_cpu():
    acoustic, vocoder = tiny_fastspeech2(), tiny_mbmelgan()
    backend = CudaBackend(device="cpu", dtype="fp32", graphs=False, **SMALL)
    backend.load_models(acoustic, vocoder)
    backend.warmup()
    return backend, acoustic, vocoder


def reference(model, ids, lengths, controls, *args):
    with torch.inference_mode():
        return model(ids, lengths, controls, *args)


def assert_same(out, ref, atol=1e-5):
    assert out.mel.dtype == torch.float32 and out.durations.dtype == torch.int64
    assert torch.equal(out.durations, ref.durations)
    assert torch.equal(out.mel_lengths, ref.mel_lengths)
    assert out.mel.shape == ref.mel.shape
    torch.testing.assert_close(out.mel, ref.mel, atol=atol, rtol=1e-4)
    torch.testing.assert_close(out.pitch, ref.pitch, atol=atol, rtol=1e-4)
    torch.testing.assert_close(out.energy, ref.energy, atol=1e-4, rtol=1e-4)


SEQS = [[1, 5, 6, 7, 2], [1, 3, 2], [1, 9, 9, 9, 9, 9, 2, 4, 4, 11, 12]]


@pytest.mark.parametrize(
    "seqs",
    [
        SEQS[:1],  # (1, 8) bucket
        SEQS,  # (4, 16): a padded row and padded symbols
        SEQS * 2,  # 6 items: past the largest batch bucket, eager
        [list(range(1, 20)) * 1],  # 19 symbols: past the longest token bucket, eager
    ],
)
def test_padded_stages_equal_the_model(fs2_cpu, seqs):
    backend, acoustic, _ = fs2_cpu
    ids, lengths = batch(seqs)
    controls = Controls.neutral(len(seqs))
    assert_same(backend.acoustic(ids, lengths, controls), reference(acoustic, ids, lengths, controls))


def test_frames_past_the_largest_bucket_run_eagerly(fs2_cpu):
    backend, acoustic, _ = fs2_cpu
    ids, lengths = batch([[1, 5, 6, 7, 2, 9, 9, 3]])
    controls = Controls(torch.tensor([4.0]), *Controls.neutral(1)[1:])  # slow: > 64 frames
    out = backend.acoustic(ids, lengths, controls)
    assert int(out.mel_lengths[0]) > 64
    assert_same(out, reference(acoustic, ids, lengths, controls))


def test_controls_reach_every_item(fs2_cpu):
    backend, acoustic, _ = fs2_cpu
    ids, lengths = batch(SEQS)
    controls = Controls(
        torch.tensor([1.0, 1.5, 0.7]),
        torch.tensor([1.0, 1.2, 0.9]),
        torch.tensor([1.0, 1.4, 0.6]),
        torch.tensor([1.0, 0.8, 1.3]),
    )
    assert_same(backend.acoustic(ids, lengths, controls), reference(acoustic, ids, lengths, controls))


def test_no_stale_data_after_a_longer_batch(fs2_cpu):
    backend, acoustic, _ = fs2_cpu
    long_ids, long_lengths = batch([list(range(1, 17)), list(range(2, 18))])
    backend.acoustic(long_ids, long_lengths, Controls.neutral(2))  # fills the (2, 16) buffers
    ids, lengths = batch([[1, 3, 2], [4, 4]])
    assert_same(
        backend.acoustic(ids, lengths, Controls.neutral(2)),
        reference(acoustic, ids, lengths, Controls.neutral(2)),
    )


@pytest.mark.parametrize(("items", "frames"), [(1, 20), (3, 16), (2, 64), (5, 10), (1, 70)])
def test_vocoder_pads_to_the_bucket_with_zeros(fs2_cpu, items, frames):
    backend, _, vocoder = fs2_cpu
    mel = torch.randn(items, frames, 6)
    wav = backend.vocoder(mel)
    assert wav.shape == (items, frames * 12) and wav.dtype == torch.float32
    table = Buckets(SMALL["batch_buckets"], SMALL["frame_buckets"], backend.max_graph_frames)
    # Past the batch buckets the rows run in slices that still pad to the frame bucket.
    bucket = pick(table.length, frames) if table.rows_for(frames) else None
    padded = mel if bucket is None else F.pad(mel, (0, 0, 0, bucket - frames))
    with torch.inference_mode():
        expected = vocoder(padded)[:, : frames * 12]
    torch.testing.assert_close(wav, expected, atol=1e-6, rtol=1e-5)


def test_vocoder_of_no_frames(fs2_cpu):
    backend, _, _ = fs2_cpu
    assert backend.vocoder(torch.zeros(2, 0, 6)).shape == (2, 0)


@pytest.fixture(scope="module")
def emotivoice_small():
    from voxserve.packs.emotivoice.layout import SMALL_CONFIG, random_model

    with torch.random.fork_rng():
        return random_model(SMALL_CONFIG, seed=3)


def emotivoice_inputs(config, lengths, seed=7):
    g = torch.Generator().manual_seed(seed)
    b, t = len(lengths), max(lengths)
    ids = torch.randint(1, config.n_vocab, (b, t), generator=g)
    lengths = torch.tensor(lengths)
    ids[torch.arange(t)[None, :] >= lengths[:, None]] = 0
    speaker = torch.randint(0, config.n_speakers, (b,), generator=g)
    style = torch.randn(b, 2 * config.bert_dim, generator=g)
    return ids, lengths, speaker, style


def test_emotivoice_plan_equals_the_model(emotivoice_small):
    model = emotivoice_small
    backend = CudaBackend(device="cpu", dtype="fp32", graphs=False, **SMALL)
    backend.load_models(model.am, model.generator)
    ids, lengths, speaker, style = emotivoice_inputs(model.config, (14, 5, 9))
    controls = Controls(
        torch.tensor([1.0, 1.2, 0.8]),
        torch.tensor([1.0, 1.1, 0.9]),
        torch.tensor([1.0, 1.3, 0.7]),
        torch.tensor([1.0, 0.8, 1.2]),
    )
    out = backend.acoustic(ids, lengths, controls, speaker, style)
    assert_same(out, reference(model.am, ids, lengths, controls, speaker, style))
    with pytest.raises(InvalidInput):
        backend.acoustic(ids, lengths, controls)


def test_a_weight_normed_vocoder_is_folded_in_place_and_still_works(emotivoice_small):
    from voxserve.packs.emotivoice.layout import SMALL_CONFIG, random_model

    with torch.random.fork_rng():
        model = random_model(SMALL_CONFIG, seed=4)  # weight norm still in place
    mel = torch.randn(1, 12, SMALL_CONFIG.n_mels)
    with torch.inference_mode():
        before = model.generator(mel)
    for _ in range(2):  # a second backend from the same modules must load too
        backend = CudaBackend(device="cpu", dtype="fp32", graphs=False, **SMALL)
        backend.load_models(model.am, model.generator)
    with torch.inference_mode():
        torch.testing.assert_close(model.generator(mel), before, atol=1e-5, rtol=1e-4)
        padded = model.generator(F.pad(mel, (0, 0, 0, 4)))[:, : 12 * 256]  # the (1, 16) bucket
    torch.testing.assert_close(backend.vocoder(mel), padded, atol=1e-5, rtol=1e-4)


# --- on a GPU ----------------------------------------------------------------------------------------

GPU_BUCKETS = {"batch_buckets": (1, 2, 4), "token_buckets": (64, 128, 256), "frame_buckets": (256, 512, 1024)}
SENTENCES = (
    "今天的天气真是不错。",
    "欢迎大家来到北京。",
    "随着人工智能技术的快速发展，语音合成已经被广泛应用于导航、客服、有声读物和智能音箱等许多不同的领域。",
    "这家餐厅的菜味道很好，价格也不算贵，服务员又热情，所以每到中午和晚上，门口总是排着长长的队伍。",
)


@pytest.fixture(scope="module")
def baker():
    """The real baker pack, its sentences as ids, and the float32 CPU reference outputs."""
    from voxserve.backends.torch_eager import TorchBackend
    from voxserve.frontend.mandarin import MandarinFrontend
    from voxserve.packs import store

    pack = store.load("baker")
    frontend = MandarinFrontend("baker")
    table = {s: i for i, s in enumerate(pack.config.symbols)}
    seqs = [[table[s] for s in frontend.phonemize(text).symbols] for text in SENTENCES]
    ref = TorchBackend("cpu")
    ref.load(pack)
    outs = []
    for s in seqs:
        ids, lengths = batch([s])
        out = ref.acoustic(ids, lengths, Controls.neutral(1))
        outs.append((out, ref.vocoder(out.mel)))
    return pack, seqs, outs


# Waveform correlation with the float32 reference (alone, and batched vs alone). bf16 keeps the mel
# (corr 0.99999) but its 8-bit mantissa moves MB-MelGAN's quantized sub-bands: measured 0.989 / 0.994.
WAV_CORR = {"fp16": (0.99, 0.999), "bf16": (0.98, 0.99)}


@pytest.fixture(scope="module", params=["fp16", "bf16", "fp16-channels-last"])
def baker_cuda(request, baker):
    dtype = request.param.split("-")[0]
    backend = CudaBackend(dtype=dtype, channels_last=request.param.endswith("channels-last"), **GPU_BUCKETS)
    backend.load(baker[0])
    backend.warmup()
    backend.dtype_name = dtype
    return backend


@gpu
@needs_cuda
def test_baker_parity_with_float32_reference(baker, baker_cuda):
    _, seqs, refs = baker
    assert baker_cuda.capture_info["graphs"]["vocoder"] > 0
    for s, (ref, ref_wav) in zip(seqs, refs, strict=True):
        ids, lengths = batch([s])
        out = baker_cuda.acoustic(ids, lengths, Controls.neutral(1))
        assert torch.equal(out.durations, ref.durations)
        assert out.mel.shape == ref.mel.shape
        assert corr(out.mel, ref.mel) >= 0.999
        wav = baker_cuda.vocoder(out.mel)
        assert wav.shape == ref_wav.shape and torch.isfinite(wav).all()
        assert corr(wav, ref_wav) >= WAV_CORR[baker_cuda.dtype_name][0]


@gpu
@needs_cuda
def test_baker_batched_equals_alone(baker, baker_cuda):
    _, seqs, _ = baker
    ids, lengths = batch(seqs[:3])
    together = baker_cuda.acoustic(ids, lengths, Controls.neutral(3))
    wavs = baker_cuda.vocoder(together.mel)
    for row, s in enumerate(seqs[:3]):
        alone = baker_cuda.acoustic(*batch([s]), Controls.neutral(1))
        n = int(alone.mel_lengths[0])
        assert torch.equal(together.durations[row, : len(s)], alone.durations[0])
        assert corr(together.mel[row, :n], alone.mel[0]) >= 0.9999
        assert (
            corr(wavs[row, : n * 300], baker_cuda.vocoder(alone.mel)[0]) >= WAV_CORR[baker_cuda.dtype_name][1]
        )


@gpu
@needs_cuda
def test_baker_past_the_buckets_runs_eagerly(baker, baker_cuda):
    _, seqs, refs = baker
    ids, lengths = batch(seqs + seqs[:1])  # 5 items: past the largest batch bucket
    out = baker_cuda.acoustic(ids, lengths, Controls.neutral(5))
    for row, (s, (ref, _)) in enumerate(zip(seqs, refs, strict=False)):
        assert torch.equal(out.durations[row, : len(s)], ref.durations[0])
        assert corr(out.mel[row, : ref.mel.shape[1]], ref.mel[0]) >= 0.999
    assert baker_cuda.vocoder(out.mel).shape == (5, out.mel.shape[1] * 300)


@gpu
@needs_cuda
def test_emotivoice_parity_on_gpu(emotivoice_small):
    # Both layouts in one test on one copy: the first load folds the copy's weight norm in place,
    # which a second deep copy of the (shared-class) fixture could not survive.
    model = copy.deepcopy(emotivoice_small)  # loading moves the acoustic model to the GPU
    ids, lengths, speaker, style = emotivoice_inputs(model.config, (40, 17, 29, 8))
    controls = Controls.neutral(4)
    ref = reference(model.am, ids, lengths, controls, speaker, style)
    for channels_last in (False, True):
        backend = CudaBackend(dtype="fp16", channels_last=channels_last, **GPU_BUCKETS)
        backend.load_models(model.am, model.generator)
        backend.warmup()
        out = backend.acoustic(ids, lengths, controls, speaker, style)
        assert torch.equal(out.durations, ref.durations)
        assert corr(out.mel, ref.mel) >= 0.999
        frames, hop = ref.mel.shape[1], model.config.hop_length
        bucket = next(f for f in GPU_BUCKETS["frame_buckets"] if f >= frames)
        with torch.inference_mode():
            ref_wav = model.generator(F.pad(ref.mel, (0, 0, 0, bucket - frames)))[:, : frames * hop]
        # This random vocoder's output is nearly constant (std ~1e-4), so compare values, not
        # correlation; fp16 on the CPU differs from fp32 by 1.4e-4 here.
        torch.testing.assert_close(backend.vocoder(out.mel), ref_wav, atol=1e-3, rtol=0)


def test_batches_over_the_cell_budget_run_in_slices_of_rows():
    """``max_graph_frames`` bounds one call's batch × frames: larger batches are cut into row slices,
    each padded to its own bucket, and still equal the model's output."""
    acoustic, vocoder = tiny_fastspeech2(), tiny_mbmelgan()
    backend = CudaBackend(device="cpu", dtype="fp32", graphs=False, max_graph_frames=64, **SMALL)
    backend.load_models(acoustic, vocoder)
    assert backend._rows_within_budget(40) == 1 and backend._rows_within_budget(20) == 3

    ids, lengths = batch(SEQS)
    controls = Controls(torch.tensor([3.0, 4.0, 2.5]), *Controls.neutral(3)[1:])  # long: over the budget
    out = backend.acoustic(ids, lengths, controls)
    assert int(out.mel_lengths.max()) * 3 > 64
    assert_same(out, reference(acoustic, ids, lengths, controls))

    mel = torch.randn(5, 40, 6)
    wav = backend.vocoder(mel)
    assert wav.shape == (5, 40 * 12)
    with torch.inference_mode():  # one row a call, padded to the 64-frame bucket
        expected = torch.cat([vocoder(F.pad(mel[i : i + 1], (0, 0, 0, 24)))[:, : 40 * 12] for i in range(5)])
    torch.testing.assert_close(wav, expected, atol=1e-6, rtol=1e-5)


def test_batches_over_the_symbol_budget_run_in_slices_of_rows():
    acoustic, vocoder = tiny_fastspeech2(), tiny_mbmelgan()
    backend = CudaBackend(device="cpu", dtype="fp32", graphs=False, max_graph_tokens=16, **SMALL)
    backend.load_models(acoustic, vocoder)
    seqs = SEQS * 2  # 6 rows of up to 11 symbols: 66 cells, sliced into rows of one
    ids, lengths = batch(seqs)
    controls = Controls(torch.linspace(0.8, 1.6, 6), *Controls.neutral(6)[1:])
    assert_same(backend.acoustic(ids, lengths, controls), reference(acoustic, ids, lengths, controls))


def test_batches_too_big_for_one_graph_replay_graphs_in_row_slices():
    """A batch over a graph's cells runs as row slices that each fit a captured bucket, never eagerly
    at its own shape (an eager call of a new shape makes cuDNN build plans: slow under load)."""
    acoustic, vocoder = tiny_fastspeech2(), tiny_mbmelgan()
    backend = CudaBackend(device="cpu", dtype="fp32", graphs=False, max_graph_frames=64, **SMALL)
    backend.load_models(acoustic, vocoder)
    frames_table = Buckets(SMALL["batch_buckets"], SMALL["frame_buckets"], 64)
    assert (
        frames_table.rows_for(20) == 2 and frames_table.rows_for(40) == 1 and frames_table.rows_for(65) == 0
    )

    shapes: list[tuple[int, int]] = []
    voc, frames = backend._voc_fn, backend._plan.frames
    backend._voc_fn = lambda x: (shapes.append((x.shape[0], x.shape[1])), voc(x))[1]
    backend._plan.frames = lambda s, d, n, f: (shapes.append((s.shape[0], f)), frames(s, d, n, f))[1]

    mel = torch.randn(4, 20, 6)  # (4, 32) is over the budget; 64 // 20 = 3 rows would not fit a bucket
    wav = backend.vocoder(mel)
    assert shapes == [(2, 32), (2, 32)]
    with torch.inference_mode():
        expected = torch.cat([vocoder(F.pad(mel[i : i + 1], (0, 0, 0, 12)))[:, : 20 * 12] for i in range(4)])
    torch.testing.assert_close(wav, expected, atol=1e-6, rtol=1e-5)

    shapes.clear()
    ids, lengths = batch([*SEQS, SEQS[0]])
    controls = Controls.neutral(4)
    out = backend.acoustic(ids, lengths, controls)
    assert int(out.mel_lengths.max()) * 4 > 64 and shapes
    assert all(frames_table.allows(s) for s in shapes), shapes
    assert_same(out, reference(acoustic, ids, lengths, controls))
