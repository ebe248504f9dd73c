"""Batch jobs over HTTP (``/v1/audio/batches``) on the real engine and chapter runner (baker, CPU)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

BOOK = "第一章 开始\n今天天气很好。我们去公园散步。\n第二章 结束\n再见了朋友。明天见。\n"
MAX_UPLOAD = 8192


def _app(tmp, tts, make_engine, **changes):
    settings = {
        "ui": False,
        "api_keys": (),
        "jobs": True,
        "jobs_dir": str(tmp),
        "max_upload_bytes": MAX_UPLOAD,
    }
    settings.update(changes)
    config = ServerConfig(**settings)
    app = create_app(config, engine=make_engine(tts, config))
    app.state.batch_jobs.make_tts = lambda: tts  # share the session's loaded voice
    return app


@pytest.fixture(scope="module")
def client(tts, make_engine, tmp_path_factory):
    app = _app(tmp_path_factory.mktemp("jobs"), tts, make_engine)
    with TestClient(app) as c:
        c.app_state = app.state
        yield c


def _wait(client, job_id, states=("done", "failed", "cancelled"), timeout=120.0, headers=None):
    t0 = time.monotonic()
    while True:
        job = client.get(f"/v1/audio/batches/{job_id}", headers=headers).json()
        if job["status"] in states:
            return job
        assert time.monotonic() - t0 < timeout, job
        time.sleep(0.05)


def test_text_job_end_to_end(client):
    r = client.post("/v1/audio/batches", json={"input": BOOK, "response_format": "wav", "name": "book.txt"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and r.headers["location"] == f"/v1/audio/batches/{job['id']}"
    assert job["input"] == {"name": "book.txt", "format": "txt", "bytes": len(BOOK.encode())}
    done = _wait(client, job["id"])
    assert done["status"] == "done", done["error"]
    assert done["progress"]["chapters_done"] == done["progress"]["chapters_total"] == 2
    assert done["progress"]["percent"] == 100.0 and done["runs"] == 1
    z = client.get(done["result_url"])
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(z.content))
    names = set(archive.namelist())
    assert names == {f"chapter-00{k}.{ext}" for k in (1, 2) for ext in ("wav", "srt", "vtt")} | {
        "manifest.json"
    }
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["complete"] and manifest["source"]["name"] == "book.txt"
    for chapter in manifest["chapters"]:
        samples, rate = sf.read(io.BytesIO(archive.read(chapter["audio"]["path"])))
        assert abs(len(samples) / rate - chapter["duration"]) < 0.01
    listed = client.get("/v1/audio/batches", params={"status": "done"}).json()
    assert job["id"] in [j["id"] for j in listed["data"]]


def test_markdown_upload_with_lexicon_and_form_settings(client):
    md = "# 书\n\n## 一\n\n重庆很美。\n\n## 二\n\n我们走吧。\n".encode()
    r = client.post(
        "/v1/audio/batches",
        files={
            "file": ("book.md", md, "text/markdown"),
            "lexicon": ("lex.txt", "重庆\tchong2 qing4\n".encode()),
        },
        data={"speed": "1.25", "response_format": "flac", "speak_titles": "false"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["input"]["format"] == "md"
    assert job["settings"]["speed"] == 1.25 and job["settings"]["lexicon"] is True
    done = _wait(client, job["id"])
    assert done["status"] == "done", done["error"]
    names = zipfile.ZipFile(io.BytesIO(client.get(done["result_url"]).content)).namelist()
    assert "chapter-002.flac" in names


@pytest.mark.parametrize(
    "kwargs,status,param",
    [
        ({"files": {"file": ("book.pdf", b"%PDF-1.4")}}, 415, None),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, None),
        ({"files": {"file": ("book.txt", b"")}}, 400, "file"),
        ({"files": {"file": ("book.txt", b" \n\n ")}}, 400, "file"),
        ({"files": {"file": ("book.epub", b"not a zip file")}}, 400, "input"),
        ({"files": {"file": ("book.txt", b"\xff\xfe\xfa")}}, 400, "input"),
        ({"data": {"voice": "baker"}, "files": {"other": ("x.txt", b"x")}}, 400, "file"),
        ({"json": {"input": "   "}}, 400, "input"),
        ({"json": {"input": "你好", "spead": 1}}, 400, "spead"),
        ({"json": {"input": "你好", "speed": 9}}, 400, "speed"),
        ({"json": {"input": "你好", "input_format": "epub"}}, 400, "input_format"),
        ({"json": {"input": "你好[voice:baker"}}, 400, "input"),
        ({"json": {"input": "你好", "voice": "nobody"}}, 404, "voice"),
        ({"json": {"input": "你好", "voice": "../etc"}}, 404, "voice"),
        ({"json": {"input": "你好", "emotion": "grumpy"}}, 404, "emotion"),
        ({"json": {"input": "你好", "lexicon": "重庆 chong2"}}, 400, "lexicon"),
        ({"json": {"input": "好" * (MAX_UPLOAD // 3 + 10)}}, 413, None),
        ({"files": {"file": ("book.txt", b"a" * (MAX_UPLOAD + 80 * 1024))}}, 413, None),
    ],
)
def test_bad_submissions_get_openai_errors(client, kwargs, status, param):
    before = len(client.get("/v1/audio/batches", params={"limit": 100}).json()["data"])
    r = client.post("/v1/audio/batches", **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] == "invalid_request_error"
    if param is not None:
        assert err["param"] == param, err
    assert len(client.get("/v1/audio/batches", params={"limit": 100}).json()["data"]) == before


@pytest.mark.parametrize("job_id", ["batch_" + "0" * 24, "batch_xyz", "..%2F..%2Fetc", "batch_%2E%2E"])
def test_unknown_or_malformed_ids_are_404(client, job_id):
    for method, path in (
        ("GET", f"/v1/audio/batches/{job_id}"),
        ("GET", f"/v1/audio/batches/{job_id}/content"),
        ("DELETE", f"/v1/audio/batches/{job_id}"),
    ):
        r = client.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"


def test_list_pages_and_rejects_bad_status(client):
    ids = [client.post("/v1/audio/batches", json={"input": "你好。"}).json()["id"] for _ in range(3)]
    for job_id in ids:
        _wait(client, job_id)
    page = client.get("/v1/audio/batches", params={"limit": 2}).json()
    assert [j["id"] for j in page["data"]] == ids[:0:-1] and page["has_more"]
    rest = client.get("/v1/audio/batches", params={"limit": 2, "after": ids[1]}).json()
    assert rest["data"][0]["id"] == ids[0]
    assert client.get("/v1/audio/batches", params={"status": "bogus"}).status_code == 400


def test_running_job_yields_to_speech_and_cancels(client):
    """Interactive requests finish while a book runs (the job waits for them); DELETE stops the book."""
    long = "\n".join(f"第{k}章\n" + "今天天气很好，我们一起去公园散步吧。" * 12 for k in range(1, 4))
    job = client.post("/v1/audio/batches", json={"input": long, "response_format": "wav"}).json()
    worker = client.app_state.batch_jobs.worker
    _wait(client, job["id"], states=("running",))
    t0 = time.monotonic()
    while client.get(f"/v1/audio/batches/{job['id']}").json()["progress"]["sentences_done"] < 1:
        assert time.monotonic() - t0 < 120
        time.sleep(0.02)
    assert client.get(f"/v1/audio/batches/{job['id']}/content").status_code == 409
    waits = worker.gate.waits
    for _ in range(2):
        r = client.post(
            "/v1/audio/speech",
            json={"input": "你好，欢迎使用。", "response_format": "pcm", "stream_format": "audio"},
        )
        assert r.status_code == 200 and len(r.content) > 0
    mid = client.get(f"/v1/audio/batches/{job['id']}").json()
    assert mid["status"] == "running"  # else the requests above did not overlap the job
    assert worker.gate.waits > waits  # the job held back while they ran
    r = client.delete(f"/v1/audio/batches/{job['id']}")
    assert r.status_code == 200 and r.json()["status"] in ("running", "cancelled")
    done = _wait(client, job["id"])
    assert done["status"] == "cancelled" and done["progress"]["chapters_done"] < 3
    assert client.get(f"/v1/audio/batches/{job['id']}/content").status_code == 409
    # A finished job's DELETE removes it.
    gone = client.delete(f"/v1/audio/batches/{job['id']}")
    assert gone.status_code == 200 and gone.json() == {
        "id": job["id"],
        "object": "audio.batch.deleted",
        "deleted": True,
    }
    assert client.get(f"/v1/audio/batches/{job['id']}").status_code == 404


def test_job_makes_progress_while_speech_keeps_coming(client):
    """The job is not starved forever: it runs in the gaps between interactive requests."""
    job = client.post("/v1/audio/batches", json={"input": BOOK}).json()
    stop = threading.Event()

    def chatter() -> None:
        while not stop.is_set():
            client.post("/v1/audio/speech", json={"input": "好。", "response_format": "pcm"})
            time.sleep(0.05)

    t = threading.Thread(target=chatter)
    t.start()
    try:
        done = _wait(client, job["id"])
    finally:
        stop.set()
        t.join()
    assert done["status"] == "done"


def test_auth_applies_to_batch_routes(tts, make_engine, tmp_path):
    app = _app(tmp_path, tts, make_engine, api_keys=("sekret",))
    with TestClient(app) as c:
        assert c.post("/v1/audio/batches", json={"input": "你好。"}).status_code == 401
        assert c.get("/v1/audio/batches").status_code == 401
        assert c.get("/v1/audio/batches/batch_" + "0" * 24).status_code == 401
        auth = {"Authorization": "Bearer sekret"}
        r = c.post("/v1/audio/batches", json={"input": "你好。"}, headers=auth)
        assert r.status_code == 202
        assert _wait(c, r.json()["id"], headers=auth)["status"] == "done"


def test_jobs_can_be_turned_off(tts, make_engine, tmp_path):
    app = _app(tmp_path, tts, make_engine, jobs=False)
    c = TestClient(app)  # no lifespan: routing only
    assert c.post("/v1/audio/batches", json={"input": "你好。"}).status_code == 404
    assert not any(getattr(r, "path", "").startswith("/v1/audio/batches") for r in app.routes)


def test_zip_stream_round_trips_and_skips_temporary_files(tmp_path):
    from voxserve.server.zipstream import zip_stream

    (tmp_path / "chapter-001.mp3").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "chapter-001.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\n你好\n")
    (tmp_path / ".chapter-002.mp3.tmp").write_bytes(b"partial")
    (tmp_path / "manifest.json.tmp").write_bytes(b"{}")
    pieces = list(zip_stream(tmp_path, chunk=1000))
    assert len(pieces) > 3  # streamed, not built whole
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == ["chapter-001.mp3", "chapter-001.srt"]
    assert archive.read("chapter-001.mp3") == (tmp_path / "chapter-001.mp3").read_bytes()
    assert archive.getinfo("chapter-001.mp3").compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("chapter-001.srt").compress_type == zipfile.ZIP_DEFLATED
