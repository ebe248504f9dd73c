"""Does a running book job keep interactive time to first audio? ``voxserve loadtest`` with and without one.

``python -m voxserve.batch.loadcheck URL --book FILE [loadtest flags] [--out DIR]`` runs one
load level against a running server while it is idle, then submits ``FILE`` as a batch job,
waits until the job renders, runs the same level again while the job runs, and cancels the
job (``--keep-job`` leaves it). The report puts both levels side by side with the job's
progress during the loaded run (sentences rendered, audio seconds), so both halves of the
contract show: interactive TTFA (p50/p95/p99 against ``--slo-ms``) and a job that still moves
when the server has gaps. It measures a server started with ``--jobs``; it does not start one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from voxserve.bench.loadtest import add_loadtest_arguments, check_target
from voxserve.bench.loadtest import run as run_loadtest
from voxserve.errors import VoxserveError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m voxserve.batch.loadcheck", description=__doc__.split("\n")[0])
    add_loadtest_arguments(p)
    p.add_argument("--book", required=True, help="document to submit as the batch job (.txt, .md, .epub)")
    p.add_argument("--job-format", default="mp3", help="the job's audio format (response_format)")
    p.add_argument("--keep-job", action="store_true", help="leave the job running afterwards")
    p.add_argument("--api-key", default=None, help="bearer key, when the server has keys")
    return p


async def check(args: argparse.Namespace) -> dict[str, Any]:
    """Idle level, then the same level during a job; returns both with the job's progress."""
    import httpx

    url = check_target(args.url, args.allow_remote)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    idle = await run_loadtest(args)
    book = Path(args.book)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, trust_env=False) as http:
        r = await http.post(
            "/v1/audio/batches",
            files={"file": (book.name, book.read_bytes())},
            data={"response_format": args.job_format},
        )
        if r.status_code != 202:
            raise VoxserveError(f"the server refused the book: {r.status_code} {r.text}")
        job_id = r.json()["id"]
        before = await _wait_rendering(http, job_id)
        args.warmup = 0
        t0 = time.monotonic()
        during = await run_loadtest(args)
        wall = time.monotonic() - t0
        after = (await http.get(f"/v1/audio/batches/{job_id}")).json()
        if not args.keep_job:
            await http.delete(f"/v1/audio/batches/{job_id}")
    moved = after["progress"]["sentences_done"] - before["progress"]["sentences_done"]
    return {
        "idle": idle["levels"][0],
        "during_job": during["levels"][0],
        "config": idle["config"],
        "slo_ms": args.slo_ms,
        "job": {
            "id": job_id,
            "status_after": after["status"],
            "sentences_during": moved,
            "audio_seconds_during": round(
                after["progress"]["audio_seconds"] - before["progress"]["audio_seconds"], 3
            ),
            "wall_seconds": round(wall, 3),
            "ran_throughout": after["status"] == "running",
        },
    }


async def _wait_rendering(http: Any, job_id: str, timeout: float = 600.0) -> dict[str, Any]:
    t0 = time.monotonic()
    while True:
        job = (await http.get(f"/v1/audio/batches/{job_id}")).json()
        if job["status"] not in ("queued", "running"):
            raise VoxserveError(f"the job ended before the measurement: {job['status']} {job.get('error')}")
        if job["progress"]["sentences_done"] > 0:
            return job
        if time.monotonic() - t0 > timeout:
            raise VoxserveError("the job did not start rendering")
        await asyncio.sleep(0.1)


def to_markdown(result: dict[str, Any]) -> str:
    rows = []
    for name in ("idle", "during_job"):
        lv = result[name]
        t = lv["ttfa_ms"]
        rows.append(
            f"| {name.replace('_', ' ')} | {lv['concurrency']} | {lv['ok']}/{lv['requests']} | "
            f"{t['p50']} / {t['p95']} / {t['p99']} | {lv.get('underruns', '-')} |"
        )
    job = result["job"]
    return "\n".join(
        [
            "# Interactive TTFA with and without a batch job",
            "",
            "| server | conc. | ok/req | TTFA p50 / p95 / p99 ms | underruns |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Job during the loaded run: {job['sentences_during']} sentences, {job['audio_seconds_during']} s of "
            f"audio in {job['wall_seconds']} s; still running at the end: {job['ran_throughout']}.",
            f"TTFA target (p99): {result['slo_ms']} ms.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    result = asyncio.run(check(args))
    md = to_markdown(result)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "loadcheck.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")
        (out / "loadcheck.md").write_text(md, "utf-8")
    return result


if __name__ == "__main__":
    main()
