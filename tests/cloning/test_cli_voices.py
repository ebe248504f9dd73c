"""``voxserve voices add / rm / list`` against a temporary store (in-process, so no torch import per call)."""

from __future__ import annotations

import numpy as np
import pytest
from clip_files import encode

from voxserve.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_rm(capsys, tmp_path, speech):
    store = str(tmp_path / "voices.sqlite")
    clip = tmp_path / "ref.flac"
    clip.write_bytes(encode(np.concatenate([np.zeros(8000), speech[0]]), 16000, "FLAC"))

    code, out, _ = run(capsys, "voices", "--store", store, "add", "CLI voice", str(clip))
    assert code == 0
    vid, name, _ = out.strip().split("\t")
    assert vid.startswith("voice_") and name == "CLI voice"

    for args in (("voices", "--store", store), ("voices", "--store", store, "list")):
        code, out, _ = run(capsys, *args)
        lines = out.strip().splitlines()
        assert code == 0 and f"{vid}\tCLI voice\tregistered" in lines
        assert any(line.startswith("baker\t") for line in lines)  # packs first, as before

    code, out, _ = run(capsys, "voices", "--store", store, "rm", vid)
    assert code == 0 and vid in out
    assert vid not in run(capsys, "voices", "--store", store)[1]


@pytest.mark.parametrize(
    "args",
    [
        ["add", "../x", "{clip}"],
        ["add", "ok", "{dir}/missing.wav"],
        ["add", "ok", "{noise}"],
        ["rm", "voice_0123456789ab"],
        ["rm", "../../etc"],
        ["add", "ok"],
    ],
)
def test_errors_are_one_line_exit_2(capsys, tmp_path, speech, args):
    clip, noise = tmp_path / "a.wav", tmp_path / "n.wav"
    clip.write_bytes(encode(speech[0], 16000, "WAV"))
    noise.write_bytes(b"not audio at all")
    store = str(tmp_path / "voices.sqlite")
    argv = [a.format(clip=clip, dir=tmp_path, noise=noise) for a in args]
    code, _, err = run(capsys, "voices", "--store", store, *argv)
    assert code == 2 and err.startswith("voxserve: error:") and len(err.strip().splitlines()) == 1, err
