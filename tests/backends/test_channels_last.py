"""Channels-last 1-D convolutions give the outputs of the modules they replace."""

from __future__ import annotations

import copy

import torch
from torch import nn

from voxserve.backends.channels_last import to_channels_last


def test_every_kind_of_conv_keeps_its_output_and_layout_flows_through():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(8, 16, 5, padding=2),
        nn.LeakyReLU(0.1),
        nn.Conv1d(16, 16, 3, dilation=3, padding=3, groups=4),
        nn.ConvTranspose1d(16, 8, 8, stride=4, padding=2, output_padding=1),
        nn.Conv1d(8, 8, 3, padding="same", bias=False),
        nn.Conv1d(8, 4, 3, padding=1, padding_mode="reflect"),  # not zeros: left as it is
    ).eval()
    fast = copy.deepcopy(net)
    assert to_channels_last(fast) == 4
    assert isinstance(fast[5], nn.Conv1d) and not isinstance(fast[0], nn.Conv1d)
    x = torch.randn(2, 8, 40)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-5, atol=1e-5)
        # between two replaced convs the activations stay time-major: no copy on the way in
        hidden = fast[1](fast[0](x))
        assert hidden.unsqueeze(2).is_contiguous(memory_format=torch.channels_last)


def test_a_real_vocoder_is_unchanged(tts):
    voc = tts.voice().pack.build_stage("vocoder").eval()
    fast = copy.deepcopy(voc)
    assert to_channels_last(fast) > 10
    mel = torch.randn(1, 120, 80) * 0.5
    with torch.inference_mode():
        torch.testing.assert_close(fast(mel), voc(mel), rtol=1e-4, atol=1e-5)
