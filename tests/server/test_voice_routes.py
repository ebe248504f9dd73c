"""Registered voices over HTTP: the round trip, and 50+ malformed or odd uploads that must get 4xx.

Every refused upload must leave the registry unchanged and never produce a 5xx. The app runs
in-process (``TestClient`` without lifespan: these routes need no started engine) on a
registry in a temporary SQLite file.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

SENTENCES = (
    "今天天气很好，我们一起去公园散步吧。然后再去吃饭。",
    "请在下一个路口向左转，然后一直往前走，大约五分钟就到了。",
)
RNG = np.random.default_rng(11)


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def clips(tts) -> dict[str, bytes]:
    """Reference files and pieces of them, made from baker speech (16 kHz)."""
    from voxserve.cloning.audio import resample

    speech = []
    for text in SENTENCES:
        a = tts.synthesize(text)
        speech.append(resample(np.asarray(a.samples, dtype=np.float32), a.sample_rate, 16000))
    gap = np.zeros(4000, dtype=np.float32)
    one = np.concatenate([gap, speech[0], gap])
    forty = np.concatenate([np.concatenate([s, gap]) for s in speech * 5])  # ~50 s of speech
    return {
        "wav": encode(one, 16000, "WAV"),
        "wav2": encode(np.concatenate([gap, speech[1], gap]), 16000, "WAV"),
        "flac": encode(one, 16000, "FLAC"),
        "ogg": encode(one, 16000, "OGG"),
        "mp3": encode(one, 16000, "MP3"),
        "one_second": encode(np.concatenate([gap, speech[0][:16000], gap]), 16000, "WAV"),
        "forty_seconds": encode(forty, 16000, "WAV"),
    }


@pytest.fixture(scope="module")
def app(tts, make_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXSERVE_VOICE_STORE", str(tmp_path_factory.mktemp("voices") / "voices.sqlite"))
        config = ServerConfig(ui=False, api_keys=())
        yield create_app(config, engine=make_engine(tts, config))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def registered(app) -> list[str]:
    return [r.id for r in app.state.voice_registry.list()]


def upload(client, name: str | None = "Test voice", files=(), **kwargs):
    data = {} if name is None else {"name": name}
    return client.post("/v1/audio/voices", data=data, files=list(files), **kwargs)


def part(data: bytes, filename: str = "ref.wav", content_type: str = "audio/wav"):
    return ("files", (filename, data, content_type))


# --- the round trip ---------------------------------------------------------------------------------


def test_register_get_list_use_delete(client, app, clips, tts):
    r = upload(client, "Zoë 张", [part(clips["wav"]), part(clips["mp3"], "b.mp3", "audio/mpeg")])
    assert r.status_code == 201, r.text
    voice = r.json()
    vid = voice["id"]
    assert voice["object"] == "voice" and voice["name"] == "Zoë 张" and voice["files"] == 2
    assert voice["model"] == "clone" and 8.0 < voice["speech_seconds"] < 12.0
    assert client.get(f"/v1/audio/voices/{vid}").json() == voice

    listed = client.get("/v1/audio/voices").json()["voices"]
    assert "baker" in [v["id"] for v in listed]  # packs are still listed
    assert {"id": vid, "name": "Zoë 张"}.items() <= next(v for v in listed if v["id"] == vid).items()

    speaker = app.state.voice_registry.lookup(vid)  # what the engine's VoiceDirectory gets
    assert speaker is not None and speaker.pack == "clone" and speaker.embedding.shape == (256,)

    gone = client.delete(f"/v1/audio/voices/{vid}")
    assert gone.status_code == 200 and gone.json() == {"id": vid, "object": "voice.deleted", "deleted": True}
    assert client.get(f"/v1/audio/voices/{vid}").status_code == 404
    assert client.delete(f"/v1/audio/voices/{vid}").status_code == 404
    assert vid not in [v["id"] for v in client.get("/v1/audio/voices").json()["voices"]]


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_each_format_registers(client, app, clips, fmt):
    r = upload(client, f"From {fmt}", [part(clips[fmt], f"x.{fmt}", f"audio/{fmt}")])
    assert r.status_code == 201, r.text
    assert client.delete(f"/v1/audio/voices/{r.json()['id']}").status_code == 200


def test_registered_voices_persist_across_apps(client, app, clips, tts, make_engine):
    r = upload(client, "Persistent", [part(clips["wav2"], content_type="application/octet-stream")])
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    config = ServerConfig(ui=False, api_keys=())
    store = app.state.voice_registry.store.path
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXSERVE_VOICE_STORE", f"sqlite://{store}")  # same file, a new registry
        other = TestClient(create_app(config, engine=make_engine(tts, config)))
    assert other.app.state.voice_registry is not app.state.voice_registry
    assert other.get(f"/v1/audio/voices/{vid}").json()["name"] == "Persistent"
    assert client.delete(f"/v1/audio/voices/{vid}").status_code == 200


def test_routes_need_the_api_key_when_keys_are_set(tts, make_engine, tmp_path, monkeypatch, clips):
    monkeypatch.setenv("VOXSERVE_VOICE_STORE", str(tmp_path / "v.sqlite"))
    config = ServerConfig(ui=False, api_keys=("sekrit",))
    keyed = TestClient(create_app(config, engine=make_engine(tts, config)))
    assert upload(keyed, files=[part(clips["wav"])]).status_code == 401
    assert keyed.get("/v1/audio/voices/voice_0123456789ab").status_code == 401
    assert keyed.delete("/v1/audio/voices/voice_0123456789ab").status_code == 401
    auth = {"Authorization": "Bearer sekrit"}
    assert keyed.get("/v1/audio/voices/voice_0123456789ab", headers=auth).status_code == 404


def test_other_routes_keep_the_json_guard(client):
    # Only the upload path admits multipart; speech still wants JSON, within its small limit.
    r = client.post("/v1/audio/speech", files=[part(b"RIFF")], data={"input": "hi"})
    assert r.status_code == 415
    r = client.post(
        "/v1/audio/speech", content=b"{" + b" " * 300_000 + b"}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


# --- malformed and odd requests ---------------------------------------------------------------------


def _wav_header(rate: int = 16000, channels: int = 1, bits: int = 16, n_bytes: int = 0) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + n_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", n_bytes)
    )


def _corrupt_middle(data: bytes, start: int = 60, n: int = 4000) -> bytes:
    noise = RNG.integers(0, 256, n, dtype=np.uint8).tobytes()
    return data[:start] + noise + data[start + n :]


def _tone(seconds: float = 5.0) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return encode((0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32), 16000, "WAV")


def _multipart(boundary: str, body: bytes) -> dict:
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


def _one(data: bytes, filename: str = "ref.wav", content_type: str = "audio/wav", name: str = "Odd") -> dict:
    return {"data": {"name": name}, "files": [part(data, filename, content_type)]}


def _rand(n: int) -> bytes:
    return RNG.integers(0, 256, n, dtype=np.uint8).tobytes()


# Each case: (id, function(clips) -> client.post keyword arguments, expected status or None for any 4xx).
CASES = [
    ("random-1k", lambda c: _one(_rand(1024)), 415),
    ("random-200k", lambda c: _one(_rand(200_000)), 415),
    ("zero-length", lambda c: _one(b""), 400),
    ("one-byte", lambda c: _one(b"R"), 415),
    ("plain-text", lambda c: _one(b"hello, this is not audio", "a.wav"), 415),
    ("json-text", lambda c: _one(b'{"audio": true}', "a.json", "audio/wav"), 415),
    ("html", lambda c: _one(b"<!doctype html><html></html>"), 415),
    ("png", lambda c: _one(b"\x89PNG\r\n\x1a\n" + _rand(2000), "x.png", "audio/wav"), 415),
    ("jpeg", lambda c: _one(b"\xff\xd8\xff\xe0" + _rand(2000)), 415),
    ("pdf", lambda c: _one(b"%PDF-1.7\n" + _rand(2000)), 415),
    ("zip", lambda c: _one(b"PK\x03\x04" + _rand(2000)), 415),
    ("elf", lambda c: _one(b"\x7fELF" + _rand(2000)), 415),
    ("riff-avi", lambda c: _one(b"RIFF\x00\x10\x00\x00AVI LIST" + _rand(2000)), 415),
    ("wav-12-bytes", lambda c: _one(c["wav"][:12]), 400),
    ("wav-20-bytes", lambda c: _one(c["wav"][:20]), 400),
    ("wav-header-only", lambda c: _one(c["wav"][:44]), 400),
    ("wav-truncated-1s", lambda c: _one(c["wav"][: 44 + 32000]), 422),
    ("wav-riff-junk", lambda c: _one(b"RIFF\xff\xff\xff\xffWAVE" + _rand(3000)), 400),
    ("wav-bad-fmt", lambda c: _one(c["wav"][:20] + _rand(16) + c["wav"][36:]), 400),
    ("wav-rate-zero", lambda c: _one(_wav_header(rate=0, n_bytes=32000) + bytes(32000)), 400),
    ("wav-rate-1000", lambda c: _one(_wav_header(rate=1000, n_bytes=32000) + _rand(32000)), 400),
    ("wav-99-channels", lambda c: _one(_wav_header(channels=99, n_bytes=99 * 2 * 100) + _rand(99 * 200)), 400),
    ("wav-7-bit", lambda c: _one(_wav_header(bits=7, n_bytes=1000) + _rand(1000)), None),
    ("flac-magic-only", lambda c: _one(b"fLaC", "a.flac", "audio/flac"), 400),
    ("flac-truncated", lambda c: _one(c["flac"][:100], "a.flac", "audio/flac"), 400),
    ("flac-garbled", lambda c: _one(_corrupt_middle(c["flac"], 100, 20_000), "a.flac", "audio/flac"), None),
    ("ogg-magic-only", lambda c: _one(b"OggS", "a.ogg", "audio/ogg"), 400),
    ("ogg-truncated", lambda c: _one(c["ogg"][:60], "a.ogg", "audio/ogg"), 400),
    ("ogg-random", lambda c: _one(b"OggS" + _rand(5000), "a.ogg", "audio/ogg"), 400),
    ("mp3-truncated", lambda c: _one(c["mp3"][:100], "a.mp3", "audio/mpeg"), 400),
    ("mp3-id3-random", lambda c: _one(b"ID3\x04\x00\x00\x00\x00\x00\x00" + _rand(5000), "a.mp3", "audio/mpeg"), None),
    ("mp3-sync-random", lambda c: _one(b"\xff\xfb\x90\x00" + _rand(20_000), "a.mp3", "audio/mpeg"), None),
    ("mp3-cut-short", lambda c: _one(c["mp3"][: len(c["mp3"]) // 4], "a.mp3", "audio/mpeg"), 422),
    ("silence", lambda c: _one(encode(np.zeros(16000 * 5, dtype=np.float32), 16000, "WAV")), 422),
    ("quiet-hiss", lambda c: _one(encode(RNG.normal(0, 1e-4, 80000).astype(np.float32), 16000, "WAV")), 422),
    ("white-noise", lambda c: _one(encode(RNG.normal(0, 0.2, 80000).astype(np.float32), 16000, "WAV")), 422),
    ("tone", lambda c: _one(_tone()), 422),
    ("unsigned-8bit-silence", lambda c: _one(encode(np.zeros(80000), 8000, "WAV", "PCM_U8")), 422),
    ("nan-floats", lambda c: _one(encode(np.full(48000, np.nan, dtype=np.float32), 16000, "WAV", "FLOAT")), None),
    ("stereo-cancels", lambda c: _one(encode(np.stack([x := sf.read(io.BytesIO(c["wav"]))[0], -x], 1), 16000, "WAV")), 422),
    ("one-second-speech", lambda c: _one(c["one_second"]), 422),
    ("forty-seconds-speech", lambda c: _one(c["forty_seconds"]), 422),
    ("three-minutes-audio", lambda c: _one(encode(np.zeros(16000 * 180, dtype=np.int16), 16000, "WAV")), 422),
    ("flac-bomb", lambda c: _one(encode(np.zeros(8000 * 3600, dtype=np.int16), 8000, "FLAC"), "a.flac"), 422),
    ("file-over-10mb", lambda c: _one(c["wav"] + bytes(10 * 1024 * 1024)), 413),
    ("upload-over-limit", lambda c: {"data": {"name": "Big"}, "files": [part(bytes(9 * 1024 * 1024))] * 6}, 413),
    ("text-part-type", lambda c: _one(c["wav"], "a.txt", "text/plain"), 415),
    ("image-part-type", lambda c: _one(c["wav"], "a.png", "image/png"), 415),
    ("json-body", lambda c: {"json": {"name": "x", "files": ["aGVsbG8="]}}, 415),
    ("form-urlencoded", lambda c: {"data": {"name": "x", "files": "abc"}}, 415),
    ("no-body", lambda c: {}, 415),
    ("multipart-garbage", lambda c: _multipart("xyz", _rand(500)), 400),
    ("multipart-no-boundary", lambda c: {"content": b"--\r\n", "headers": {"content-type": "multipart/form-data"}}, 400),
    ("multipart-unterminated", lambda c: _multipart("b", b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx'), 400),
    ("missing-files", lambda c: {"data": {"name": "No files"}, "files": [("other", ("a.wav", c["wav"], "audio/wav"))]}, 400),
    ("files-as-text", lambda c: _multipart("b", b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name="files"\r\n\r\nnot a file\r\n--b--\r\n'), 400),
    ("missing-name", lambda c: {"files": [part(c["wav"])]}, 400),
    ("empty-name", lambda c: _one(c["wav"], name=""), 400),
    ("blank-name", lambda c: _one(c["wav"], name="   "), 400),
    ("dotdot-name", lambda c: _one(c["wav"], name="../../etc/passwd"), 400),
    ("slash-name", lambda c: _one(c["wav"], name="a/b"), 400),
    ("backslash-name", lambda c: _one(c["wav"], name="..\\windows"), 400),
    ("dotfile-name", lambda c: _one(c["wav"], name=".bashrc"), 400),
    ("long-name", lambda c: _one(c["wav"], name="n" * 65), 400),
    ("newline-name", lambda c: _one(c["wav"], name="a\nb"), 400),
    ("rtl-override-name", lambda c: _one(c["wav"], name="abc\u202etxt.exe"), 400),
    ("zero-width-name", lambda c: _one(c["wav"], name="a\u200bb"), 400),
    ("emoji-name", lambda c: _one(c["wav"], name="🙂"), 400),
    ("too-many-files", lambda c: {"data": {"name": "Many"}, "files": [part(c["wav"])] * 9}, 400),
    ("thousand-files", lambda c: {"data": {"name": "Many"}, "files": [part(b"x")] * 1001}, 400),
    ("good-then-corrupt", lambda c: {"data": {"name": "Mix"}, "files": [part(c["wav"]), part(c["wav"][:44])]}, 400),
    ("good-then-silent", lambda c: {"data": {"name": "Mix"}, "files": [part(c["wav"]), part(encode(np.zeros(80000), 16000, "WAV"))]}, 422),
    ("good-then-not-audio", lambda c: {"data": {"name": "Mix"}, "files": [part(c["wav"]), part(b"hello")]}, 415),
    ("unicode-name-bad-audio", lambda c: _one(_rand(100), name="张三"), 415),
]  # fmt: skip


def test_there_are_at_least_50_malformed_uploads():
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("make", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_upload_is_refused_and_changes_nothing(client, app, clips, make, status):
    before = registered(app)
    r = client.post("/v1/audio/voices", **make(clips))
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if status is not None:
        assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
    assert registered(app) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/v1/audio/voices/voice_0123456789ab", 404),
        ("get", "/v1/audio/voices/baker", 400),
        ("get", "/v1/audio/voices/voice_", 400),
        ("get", "/v1/audio/voices/voice_0123456789AB", 400),
        ("get", "/v1/audio/voices/voice_0123456789ab0", 400),
        ("get", "/v1/audio/voices/..%2F..%2Fetc%2Fpasswd", 404),
        ("get", "/v1/audio/voices/" + "a" * 5000, 400),
        ("delete", "/v1/audio/voices/voice_0123456789ab", 404),
        ("delete", "/v1/audio/voices/%00", 400),
        ("delete", "/v1/audio/voices/voice_%E2%80%AE12345678901", 400),
        ("put", "/v1/audio/voices/voice_0123456789ab", 405),
    ],
)
def test_odd_ids_are_refused(client, app, method, path, status):
    before = registered(app)
    r = getattr(client, method)(path)
    assert r.status_code == status, r.text[:300]
    assert registered(app) == before


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("put", "/v1/audio/voices", "GET, POST"),
        ("options", "/v1/audio/voices", "GET, POST"),
        ("patch", "/v1/audio/voices/voice_0123456789ab", "GET, DELETE"),
        ("post", "/v1/audio/voices/voice_0123456789ab", "GET, DELETE"),
        ("head", "/v1/audio/voices/voice_0123456789ab", "GET, DELETE"),
    ],
)
def test_other_methods_get_405_with_every_allowed_method(client, method, path, allow):
    r = getattr(client, method)(path)
    assert r.status_code == 405 and r.headers["allow"] == allow


def test_put_with_a_multipart_body_is_405_not_415(client, clips):
    r = client.put("/v1/audio/voices", data={"name": "x"}, files=[part(clips["wav"])])
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
