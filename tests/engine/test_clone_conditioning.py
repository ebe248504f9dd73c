"""Voice names of an ``embedding`` pack (the clone voice) and the d-vector each batch row gets.

A clone pack ships its training speakers' vectors (``speakers.safetensors``), so ``clone``,
``clone:<speaker>`` and a bare ``<speaker>`` are voices beside registered ones, and every
row of a batch is a d-vector (rows of cloned and pack speakers share one call).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from voxserve.engine.batch import conditioning_tensors
from voxserve.engine.conditioning import has_speaker_table, neutral_inputs, speaker_value, speaker_vectors
from voxserve.engine.resolve import resolve_voice
from voxserve.engine.speakers import Speaker
from voxserve.errors import InvalidInput, NotFound, PackError
from voxserve.packs.pack import Pack


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Pack:
    from voxserve.packs.clone.tiny import write_tiny_pack

    return Pack(write_tiny_pack(tmp_path_factory.mktemp("clone") / "clone", name="clone", seed=7))


def _variant(pack: Pack, tmp_path, edit) -> Pack:
    """A copy of ``pack`` with its config.json changed by ``edit`` (and its files as ``edit`` leaves them)."""
    out = tmp_path / "clone"
    shutil.copytree(pack.path, out)
    config = json.loads((out / "config.json").read_text("utf-8"))
    edit(config, out)
    (out / "config.json").write_text(json.dumps(config, ensure_ascii=False), "utf-8")
    return Pack(out)


def test_the_table_holds_the_training_speakers_vectors(pack):
    from safetensors.numpy import load_file

    table = speaker_vectors(pack)
    assert table.shape == (2, 256) and table.dtype == np.float32 and not table.flags.writeable
    np.testing.assert_array_equal(table, load_file(str(pack.path / "speakers.safetensors"))["embeddings"])
    assert speaker_vectors(pack) is table  # read once per pack


def test_pack_names_resolve_to_table_rows(pack):
    packs = {"clone": pack}
    assert resolve_voice("clone", "clone", packs) == Speaker("clone", row=0, voice_id="clone")
    assert resolve_voice(None, "clone", packs).row == 0
    assert resolve_voice("clone:tiny_b", "clone", packs) == Speaker("clone", row=1, voice_id="clone:tiny_b")
    assert resolve_voice("tiny_b", "clone", packs) == Speaker("clone", row=1, voice_id="clone:tiny_b")
    with pytest.raises(NotFound, match="tiny_a, tiny_b"):
        resolve_voice("clone:nobody", "clone", packs)


def test_rows_become_d_vectors_and_batch_with_cloned_voices(pack):
    table = speaker_vectors(pack)
    cloned = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    rows = [
        speaker_value(pack, Speaker("clone")),
        speaker_value(pack, resolve_voice("clone:tiny_b", "clone", {"clone": pack})),
        speaker_value(pack, Speaker("clone", embedding=cloned, voice_id="voice_0123456789ab")),
    ]
    speaker, _ = conditioning_tensors(rows, [None] * 3)
    assert speaker is not None and speaker.shape == (3, 256)
    np.testing.assert_array_equal(speaker.numpy(), np.stack([table[0], table[1], cloned]))


def test_warmup_row_is_the_default_speaker(pack):
    from voxserve.engine.conditioning import style_source

    kw = neutral_inputs(pack, style_source(pack))
    np.testing.assert_array_equal(kw["speaker"].numpy(), speaker_vectors(pack)[:1])


def test_a_pack_without_a_table_speaks_only_registered_voices(pack, tmp_path):
    bare = _variant(pack, tmp_path, lambda c, d: c.pop("speaker_table"))
    assert not has_speaker_table(bare)
    assert resolve_voice("clone", "clone", {"clone": bare}).row is None
    with pytest.raises(InvalidInput, match="registered voice"):
        speaker_value(bare, Speaker("clone"))
    with pytest.raises(NotFound, match="no speaker list"):
        resolve_voice("clone:tiny_a", "clone", {"clone": bare})
    vec = np.ones(256, np.float32)
    assert speaker_value(bare, Speaker("clone", embedding=vec)) is not None


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c, d: (d / "speakers.safetensors").unlink(), "missing speaker table"),
        (
            lambda c, d: (d / "speakers.safetensors").write_bytes(b"not safetensors"),
            "unreadable speaker table",
        ),
        (lambda c, d: c["speakers"].append("tiny_c"), r"is \[2, 256\], expected \[3, 256\]"),
        (lambda c, d: c.update(speaker_table="../elsewhere.safetensors"), "file name in the pack"),
    ],
    ids=["missing", "corrupt", "wrong-rows", "outside-the-pack"],
)
def test_a_bad_table_names_the_file(pack, tmp_path, edit, message):
    bad = _variant(pack, tmp_path, edit)
    with pytest.raises(PackError, match=message):
        speaker_value(bad, Speaker("clone"))
