"""``voxserve batch``: one-line errors with exit 2, and kill-and-resume of a real subprocess."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time

import pytest

from voxserve.batch import manifest as mf
from voxserve.cli import main


def fail(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("voxserve: error: ") and err.count("\n") == 1
    return err


def test_unreadable_input(tmp_path, capsys):
    assert "no such file" in fail(["batch", str(tmp_path / "none.txt"), "-o", str(tmp_path / "o")], capsys)
    (tmp_path / "bad.txt").write_bytes(b"\xc3\x28")
    assert "not UTF-8" in fail(["batch", str(tmp_path / "bad.txt"), "-o", str(tmp_path / "o")], capsys)
    (tmp_path / "bad.epub").write_bytes(b"not a zip")
    assert "not a readable EPUB" in fail(
        ["batch", str(tmp_path / "bad.epub"), "-o", str(tmp_path / "o")], capsys
    )


def test_bad_markup_and_unknown_voice_stop_before_synthesis(tmp_path, capsys):
    src = tmp_path / "a.txt"
    src.write_text("第一章\n好的。\n第二章\n你[voice:nobody]好[/]。\n", "utf-8")
    err = fail(["batch", str(src), "-o", str(tmp_path / "o"), "--quiet"], capsys)
    assert "chapter 2 ('第二章'), line 1, column 2: unknown voice 'nobody'" in err
    src.write_text("好[pause:x]。\n", "utf-8")
    assert "line 1, column 2: malformed pause" in fail(["batch", str(src), "-o", str(tmp_path / "o")], capsys)
    assert not (tmp_path / "o").exists()


def test_disk_full_exits_2(tmp_path, capsys, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mf, "_write_file", full)
    src = tmp_path / "a.md"
    src.write_text("# 一\n\n好。\n", "utf-8")
    assert "disk full writing" in fail(["batch", str(src), "-o", str(tmp_path / "o"), "--quiet"], capsys)


def _done(out) -> list[int]:
    try:
        manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return [c["index"] for c in manifest["chapters"] if c["status"] == "done"]


def test_kill_and_resume(tmp_path):
    # A short first chapter and long later ones: the kill lands after chapter 1 is written.
    long = "\n".join(f"第{n}句，今天天气很好。" for n in range(1, 7))
    src = tmp_path / "book.txt"
    src.write_text(f"第一章\n你好。\n第二章\n{long}\n第三章\n{long}\n", "utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "voxserve", "batch", str(src), "-o", str(out), "--format", "flac", "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not _done(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no cleanup runs, like a crash
    finally:
        proc.communicate()
    assert _done(out) == [1], "the kill should land after chapter 1 and before the end"
    first = out / "chapter-001.flac"
    stamp, digest = first.stat().st_mtime_ns, mf.file_sha256(first)

    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 already done" in result.stdout
    assert first.stat().st_mtime_ns == stamp and mf.file_sha256(first) == digest
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["complete"] and _done(out) == [1, 2, 3]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for entry in manifest["chapters"]:
        assert mf.file_sha256(out / entry["audio"]["path"]) == entry["audio"]["sha256"]
