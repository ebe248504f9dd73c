"""The command line: success writes audio; every user error is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import soundfile as sf


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxserve", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=os.environ.copy(),
        timeout=300,
    )


def test_synth_writes_wav_and_timings(tts, tmp_path):
    out, timings = tmp_path / "a.wav", tmp_path / "t.json"
    r = run(
        "synth",
        "你好，欢迎使用。",
        "-o",
        str(out),
        "--emotion",
        "happy",
        "--speed",
        "1.2",
        "--timings",
        str(timings),
    )
    assert r.returncode == 0, r.stderr
    data, sr = sf.read(out)
    assert sr == 24000 and len(data) > sr * 0.5
    assert '"chars"' in timings.read_text("utf-8")


def test_voices_lists_baker(tts):
    r = run("voices")
    assert r.returncode == 0 and "baker" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "", "-o", "{out}"],
        ["synth", "。。。", "-o", "{out}"],
        ["synth", "你好", "-o", "{out}", "--voice", "nobody"],
        ["synth", "你好", "-o", "{out}", "--emotion", "grumpy"],
        ["synth", "你好", "-o", "{out}", "--speed", "9"],
        ["synth", "你好", "-o", "{out}", "--pitch", "abc"],
        ["synth", "你好", "-o", "{dir}/missing/x.wav"],
        ["synth", "你好", "-o", "{dir}/x.mp4"],
        ["synth", "你好"],
        ["nosuchcommand"],
    ],
)
def test_bad_input_is_one_line_exit_2(tts, tmp_path, args):
    args = [a.format(out=tmp_path / "o.wav", dir=tmp_path) for a in args]
    r = run(*args)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voxserve: error:"), r.stderr
    assert "Traceback" not in r.stderr


def test_long_stdin_input_is_clear(tts, tmp_path):
    r = run("synth", "-", "-o", str(tmp_path / "o.wav"), stdin="好" * 100_000)
    assert r.returncode == 2 and "limit" in r.stderr and "Traceback" not in r.stderr
