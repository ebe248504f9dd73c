"""SRT and WebVTT text from cues."""

from __future__ import annotations

from voxserve.batch.render import Cue
from voxserve.batch.subtitles import parse, srt, vtt

CUES = [Cue(0.125, 1.5, "你好。"), Cue(3725.0004, 3726.9996, "second\nline")]


def test_srt():
    assert srt(CUES) == (
        "1\n00:00:00,125 --> 00:00:01,500\n你好。\n\n2\n01:02:05,000 --> 01:02:07,000\nsecond line\n"
    )


def test_vtt():
    assert vtt(CUES) == (
        "WEBVTT\n\n00:00:00.125 --> 00:00:01.500\n你好。\n\n01:02:05.000 --> 01:02:07.000\nsecond line\n"
    )


def test_round_trip():
    assert [(round(c.start, 3), round(c.end, 3), c.text) for c in parse(vtt(CUES))] == [
        (0.125, 1.5, "你好。"),
        (3725.0, 3727.0, "second line"),
    ]
    assert parse(srt(CUES)) == parse(vtt(CUES))
