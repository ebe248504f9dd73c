"""The polyphase rewrite of transposed convs used for export: exact shapes, same outputs, same audio."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from voxserve.backends.onnx_export import corr
from voxserve.backends.onnx_vocoder import PolyphaseConvTranspose1d, can_rewrite, polyphase


def log_spectrum_db(wav: torch.Tensor) -> torch.Tensor:
    """Log-magnitude STFT in dB (n_fft 1024, hop 256), floored at -100 dB."""
    spec = torch.stft(wav, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
    return 20 * torch.log10(spec.clamp_min(1e-5))


@pytest.mark.parametrize(
    ("cin", "cout", "kernel", "stride", "padding", "output_padding"),
    [
        (8, 4, 6, 3, 0, 0),  # MB-MelGAN: kernel 2·stride, cropped by the caller
        (8, 4, 10, 5, 0, 0),
        (6, 3, 16, 8, 4, 0),  # HiFi-GAN V1: padding (k - s) / 2
        (6, 3, 4, 2, 1, 0),
        (5, 2, 9, 3, 2, 1),  # three taps per phase, output padding
    ],
)
def test_polyphase_equals_the_transposed_conv(cin, cout, kernel, stride, padding, output_padding):
    torch.manual_seed(kernel * 10 + stride)
    conv = nn.ConvTranspose1d(cin, cout, kernel, stride, padding, output_padding)
    x = torch.randn(2, cin, 13)
    with torch.no_grad():
        want, got = conv(x), PolyphaseConvTranspose1d(conv)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_only_plain_strided_transposed_convs_are_rewritten():
    assert can_rewrite(nn.ConvTranspose1d(4, 4, 6, 3))
    assert not can_rewrite(nn.ConvTranspose1d(4, 4, 7, 3))  # kernel not a multiple of the stride
    assert not can_rewrite(nn.ConvTranspose1d(4, 4, 6, 3, groups=2))
    assert not can_rewrite(nn.ConvTranspose1d(4, 4, 6, 3, dilation=2))
    assert not can_rewrite(nn.ConvTranspose1d(4, 4, 3, 1))
    assert not can_rewrite(nn.Conv1d(4, 4, 3))
    plain = nn.Sequential(nn.Conv1d(4, 4, 3))
    assert polyphase(plain) is plain
    with pytest.raises(ValueError, match="transposed"):
        PolyphaseConvTranspose1d(nn.ConvTranspose1d(4, 4, 7, 3))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def baker_vocoder():
    from voxserve.packs import store

    return store.load("baker").build_stage("vocoder").eval()


def test_baker_vocoder_keeps_its_audio(baker_vocoder):
    """The rewritten MB-MelGAN against the PyTorch one on a smooth log-mel: waveform and log spectrum.

    Measured: identical samples (the sub-band rounding to 1/128 absorbs the reordered float sums).
    """
    rewritten = polyphase(baker_vocoder)
    assert rewritten is not baker_vocoder
    assert sum(isinstance(m, PolyphaseConvTranspose1d) for m in rewritten.modules()) == 3
    assert rewritten.receptive_frames == baker_vocoder.receptive_frames
    g = torch.Generator().manual_seed(4)
    mel = torch.randn(1, 160, 80, generator=g)
    mel = (
        nn.functional.avg_pool1d(mel.transpose(1, 2), 9, 1, 4).transpose(1, 2) * 2
        - 4
        - torch.linspace(0, 2, 80)
    )
    with torch.inference_mode():
        want, got = baker_vocoder(mel)[0], rewritten(mel)[0]
    assert got.shape == want.shape == (160 * 300,)
    assert corr(got, want) >= 0.99999
    spec_want, spec_got = log_spectrum_db(want), log_spectrum_db(got)
    loud = spec_want > spec_want.max() - 60
    assert (spec_got - spec_want)[loud].abs().mean() < 0.05  # dB
