"""GPU memory of one engine, each configuration in a fresh process (GPU machine; development tool).

    python scripts/gpu_memory.py VOICE [KEY=VALUE ...]    # one probe, prints one JSON line
    python scripts/gpu_memory.py all OUT.json             # baker and emotivoice-size, default and lean

A probe loads the voice on the ``cuda`` backend with the given options, captures its graphs,
then runs what a server meets: batches of 1, 8 and 64 requests of every sentence class (each
a symbol call and a vocoder call). It reports torch's peak reserved and allocated memory and
the process's own use as nvidia-smi sees it (CUDA context included). A fresh process per
configuration: within one process, earlier backends' cached blocks and graph pools linger.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CONFIGS = {
    "default": {},
    "lean": {"max_graph_frames": 4096, "max_graph_tokens": 2048},
}


def probe(voice: str, options: dict[str, int]) -> dict[str, object]:
    import torch

    from voxserve.backends.registry import create
    from voxserve.bench import stages
    from voxserve.bench.presets import load_workload

    workload = load_workload(voice)
    backend = create("cuda", device="cuda", **options)
    backend.load(workload.pack)
    backend.warmup()
    torch.cuda.synchronize()
    warm = torch.cuda.memory_reserved() / 2**20
    for items in workload.classes.values():
        rows = [s for item in items for s in workload.sentences(item)]
        for batch in (1, 8, 64):
            ids, lengths = stages.pad([rows[i % len(rows)] for i in range(batch)])
            out = stages.acoustic(workload, backend, ids, lengths)
            backend.vocoder(out.mel[:, : max(1, int(out.mel_lengths.max()))])
    torch.cuda.synchronize()
    smi = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    used = next(
        (int(m) for p, m in (line.split(",") for line in smi.splitlines()) if int(p) == os.getpid()), None
    )
    return {
        "voice": voice,
        "options": options,
        "graphs": getattr(backend, "capture_info", {}).get("graphs"),
        "reserved_after_capture_mib": round(warm),
        "peak_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20),
        "peak_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20),
        "process_mib_nvidia_smi": used,
    }


def main() -> None:
    if sys.argv[1] != "all":
        options = {k: int(v) for k, v in (a.split("=", 1) for a in sys.argv[2:])}
        print(json.dumps(probe(sys.argv[1], options)))
        return
    results = []
    for voice in ("baker", "emotivoice-size"):
        for name, options in CONFIGS.items():
            args = [f"{k}={v}" for k, v in options.items()]
            out = subprocess.run(
                [sys.executable, __file__, voice, *args], capture_output=True, text=True, check=False
            )
            line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
            row = json.loads(line) if line.startswith("{") else {"voice": voice, "error": out.stderr[-500:]}
            row["config"] = name
            print(json.dumps(row), flush=True)
            results.append(row)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
