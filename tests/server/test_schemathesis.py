"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema: >= 500 cases, zero 5xx.

Schemathesis' CLI runs against a real uvicorn server on the real engine (its pytest
plugin does not work with this pytest). Besides "no 5xx" it checks that every status,
content type and body (SSE events included) is the one the schema documents, and that
schema-invalid requests are refused. Kept cheap on 2 cores by this test's config:
``max_input_chars=16`` (longer generated inputs get a 400 at once; shorter ones are a few
seconds of audio at most) and a generous deadline, so no case can time out into a 504.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

pytest.importorskip("schemathesis")

MAX_EXAMPLES = 400
"""Per operation; speech takes nearly all of them (the GET routes have nothing to vary)."""
MIN_CASES = 500


def test_generated_requests_never_get_5xx(tts, serve_app, make_engine, tmp_path):
    config = ServerConfig(ui=False, api_keys=(), max_input_chars=16, deadline_s=120.0)
    report = tmp_path / "schemathesis.json"
    app = create_app(config, engine=make_engine(tts, config))
    documented = sum(len(ops) for ops in app.openapi()["paths"].values())
    with serve_app(app) as url:
        cmd = [
            sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--workers", "1",
            "--request-timeout", "60", "--report", "json", "--report-json-path", str(report),
        ]  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    assert cases["generated"] >= MIN_CASES and cases["with_failures"] == 0 and cases["errored"] == 0, cases
    assert result["operations"]["tested"] == documented  # every documented operation was exercised
