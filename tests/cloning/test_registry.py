"""Voice registry: names and ids, the SQLite and Redis stores, registration, lookup and its cache."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest
from clip_files import encode

from voxserve.cloning.errors import CorruptAudio, UnusableAudio
from voxserve.cloning.names import check_voice_id, is_voice_id, new_voice_id, validate_name
from voxserve.cloning.registry import VoiceConfig, VoiceRegistry, open_registry
from voxserve.cloning.store import RedisVoiceStore, SQLiteVoiceStore, StoreError, VoiceRecord, open_store
from voxserve.engine.speakers import Speaker, VoiceDirectory
from voxserve.errors import InvalidInput, NotFound

RNG = np.random.default_rng(3)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).random(256).astype(np.float32)
    return v / np.linalg.norm(v)


def record(seed: int, name: str = "Voice", t: float | None = None) -> VoiceRecord:
    return VoiceRecord(new_voice_id(), name, time.time() if t is None else t, unit(seed), 2, 7.5, "ge2e")


# --- names and ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Alice", "张三", "Zoë", "O'Brien (take 2)", "a", "x" * 64, "Ana-María_3.1"])
def test_good_names(name):
    assert validate_name(name) == name


def test_names_are_nfc_normalized():
    assert validate_name("Zoe\u0308") == "Zoë"


@pytest.mark.parametrize(
    "name",
    ["", "   ", " lead", "trail ", "../etc/passwd", "a/b", "a\\b", "..", ".hidden", "a..b", "x" * 65,
     "tab\there", "new\nline", "nul\x00", "rtl\u202eevil", "zero\u200bwidth", "emoji🙂", "semi;colon", 42, None],
)  # fmt: skip
def test_bad_names(name):
    with pytest.raises(InvalidInput) as e:
        validate_name(name)
    assert e.value.param == "name"


def test_voice_ids():
    vid = new_voice_id()
    assert is_voice_id(vid) and len(vid) == 18 and new_voice_id() != vid
    for bad in ("voice_", "voice_ABCDEF012345", "voice_0123456789ab0", "baker", "../voice_0123456789ab", 7):
        assert not is_voice_id(bad)
        with pytest.raises(InvalidInput):
            check_voice_id(bad)


# --- stores -----------------------------------------------------------------------------------------


def _exercise(store) -> None:
    a, b = record(1, "A", 100.0), record(2, "张三", 200.0)
    store.add(b)
    store.add(a)
    assert [r.id for r in store.list()] == [a.id, b.id]  # oldest first
    got = store.get(b.id)
    assert got is not None and got.name == "张三" and got.created_at == 200.0
    assert got.files == 2 and got.speech_seconds == 7.5 and got.encoder == "ge2e"
    np.testing.assert_array_equal(got.embedding, b.embedding)
    assert got.embedding.dtype == np.float32 and not got.embedding.flags.writeable
    with pytest.raises(StoreError):
        store.add(a)  # ids are never reused
    assert store.get(new_voice_id()) is None
    assert store.delete(a.id) and not store.delete(a.id)
    assert [r.id for r in store.list()] == [b.id]


def test_sqlite_store_round_trip_and_persistence(tmp_path):
    path = tmp_path / "sub" / "voices.sqlite"
    store = SQLiteVoiceStore(path)
    assert store.list() == [] and not path.exists()  # reading creates nothing
    _exercise(store)
    kept = store.list()[0]
    store.close()
    reopened = open_store(f"sqlite://{path}")
    again = reopened.get(kept.id)
    assert again is not None and again.name == kept.name
    np.testing.assert_array_equal(again.embedding, kept.embedding)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened.close()


def test_sqlite_store_unwritable_path_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        SQLiteVoiceStore(blocker / "voices.sqlite").add(record(1))


def test_redis_store_round_trip(redis_url):
    store = open_store(redis_url)
    assert isinstance(store, RedisVoiceStore)
    store.prefix = f"test:{new_voice_id()}:"
    _exercise(store)
    other = RedisVoiceStore(redis_url, prefix=store.prefix)  # a second server sees the same voices
    assert [r.id for r in other.list()] == [r.id for r in store.list()]
    store.close()
    other.close()


def test_unreachable_redis_is_a_503_store_error():
    store = RedisVoiceStore("redis://127.0.0.1:1/0", timeout_s=0.2)
    with pytest.raises(StoreError) as e:
        store.list()
    assert e.value.status == 503


# --- registry ---------------------------------------------------------------------------------------


class CountingEmbedder:
    """A stand-in for the encoder: the mean of per-clip vectors made from each clip's length."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, wavs):
        self.calls += 1
        v = np.mean([unit(w.size) for w in wavs], axis=0)
        return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def registry(tmp_path):
    reg = VoiceRegistry(
        SQLiteVoiceStore(tmp_path / "v.sqlite"), VoiceConfig(pack="clone-test"), CountingEmbedder()
    )
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def wavs(speech):
    return [encode(np.concatenate([np.zeros(8000), s, np.zeros(8000)]), 16000, "WAV") for s in speech]


def test_register_get_list_delete(registry, wavs):
    rec = registry.register("  ".join(["Ana", "B"]), wavs[:2])
    assert is_voice_id(rec.id) and rec.files == 2 and 8 < rec.speech_seconds < 12
    assert registry.get(rec.id).name == "Ana  B"
    assert [r.id for r in registry.list()] == [rec.id]
    registry.delete(rec.id)
    with pytest.raises(NotFound):
        registry.get(rec.id)
    with pytest.raises(NotFound):
        registry.delete(rec.id)
    with pytest.raises(InvalidInput):
        registry.get("../../etc/passwd")


def test_registry_is_a_voice_directory(registry, wavs):
    directory: VoiceDirectory = registry
    rec = registry.register("Dir", wavs[:1])
    speaker = directory.lookup(rec.id)
    assert isinstance(speaker, Speaker)
    assert speaker.pack == "clone-test" and speaker.voice_id == rec.id and speaker.row is None
    np.testing.assert_array_equal(speaker.embedding, rec.embedding)
    assert speaker.cache_key() == f"clone-test/emb:{rec.id}"
    assert directory.lookup("baker") is None and directory.lookup(new_voice_id()) is None


def test_lookup_uses_the_cache_and_forgets_deleted_voices(tmp_path, wavs):
    store = SQLiteVoiceStore(tmp_path / "v.sqlite")
    reg = VoiceRegistry(store, VoiceConfig(cache_ttl_s=3600), CountingEmbedder())
    rec = reg.register("Cached", wavs[:1])
    fresh = VoiceRegistry(SQLiteVoiceStore(tmp_path / "v.sqlite"), VoiceConfig(), CountingEmbedder())
    assert fresh.lookup(rec.id) is not None and fresh.cache.misses == 1
    assert fresh.lookup(rec.id) is fresh.lookup(rec.id) and fresh.cache.hits == 2
    reg.delete(rec.id)
    assert reg.lookup(rec.id) is None
    reg.close()
    fresh.close()


def test_cache_entries_expire(tmp_path, wavs):
    reg = VoiceRegistry(
        SQLiteVoiceStore(tmp_path / "v.sqlite"), VoiceConfig(cache_ttl_s=0.0), CountingEmbedder()
    )
    rec = reg.register("Brief", wavs[:1])
    other = SQLiteVoiceStore(tmp_path / "v.sqlite")
    assert other.delete(rec.id)  # another process deletes it
    time.sleep(0.01)
    assert reg.lookup(rec.id) is None
    reg.close()
    other.close()


def test_refused_uploads_leave_the_registry_unchanged(registry, wavs):
    embedder = registry._embed
    with pytest.raises(InvalidInput):
        registry.register("../x", wavs[:1])
    with pytest.raises(CorruptAudio, match=r"files\[1\]"):
        registry.register("Mixed", [wavs[0], wavs[1][:44]])
    with pytest.raises(UnusableAudio, match=r"files\[0\]"):
        registry.register("Silent", [encode(np.zeros(16000 * 5, dtype=np.float32), 16000, "WAV")])
    with pytest.raises(InvalidInput, match="at most"):
        registry.register("Many", wavs[:1] * (registry.limits.max_files + 1))
    assert registry.list() == [] and embedder.calls == 0


def test_several_files_are_averaged_with_the_real_encoder(tmp_path, wavs, encoder):
    from voxserve.cloning.reference import prepare

    reg = VoiceRegistry(SQLiteVoiceStore(tmp_path / "v.sqlite"))
    rec = reg.register("Real", wavs[:2])
    each = [encoder.embed(prepare(w).samples) for w in wavs[:2]]
    mean = (each[0] + each[1]) / np.linalg.norm(each[0] + each[1])
    np.testing.assert_allclose(rec.embedding, mean, atol=1e-5)
    assert float(rec.embedding @ encoder.embed(prepare(wavs[2]).samples)) > 0.85  # same speaker, new text
    reg.close()


def test_open_registry_shares_one_registry_per_store(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXSERVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VOXSERVE_VOICE_STORE", raising=False)
    first = open_registry()
    assert first is open_registry()
    assert str(first.store.path).startswith(str(tmp_path / "home"))
    monkeypatch.setenv("VOXSERVE_VOICE_STORE", str(tmp_path / "other.sqlite"))
    monkeypatch.setenv("VOXSERVE_CLONE_PACK", "mine")
    second = open_registry()
    assert second is not first and second.config.pack == "mine"
