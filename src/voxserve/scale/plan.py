"""``voxserve plan --streams N --slo-ms X [--gpu h100|h200]``: replicas and GPUs for a load, from measurements.

Reads the committed sizing tables (``sizing.py``), finds how many streams one GPU holds at the
p99 time-to-first-audio target, keeps ``headroom`` of that free, and divides. It prints its
assumptions with the answer, because the answer is only as good as they are. It does not measure
anything, and it does not extrapolate past the highest load that was measured.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from voxserve.errors import InvalidInput
from voxserve.scale.sizing import Capacity, SizingTable, capacity_at, load_tables

DEFAULT_HEADROOM = 0.2
"""Share of the measured capacity left free by default: bursts, uneven routing, noisy neighbours."""


@dataclass(frozen=True)
class Plan:
    """Replicas and GPUs for ``streams`` concurrent streams at p99 TTFA <= ``slo_ms`` on one GPU kind."""

    gpu: str
    device: str
    streams: int
    slo_ms: float
    capacity: Capacity
    """Streams one GPU (one replica) holds at the target, from the table."""
    headroom: float
    per_replica: int
    """Streams each replica is planned to carry: the capacity less the headroom."""
    spare: int
    replicas: int
    """Replicas to run, one GPU each, spares included."""
    gpus: int

    def assumptions(self, table: SizingTable) -> list[str]:
        """The conditions under which the numbers hold, in words."""
        how = {
            "interpolated": "interpolated between two measured loads on the fitted curve",
            "measured": "the highest measured load meeting the target (the next one had errors)",
            "at_least": "the highest load measured still met the target: a lower bound",
            "single": "the target is close to one stream's own TTFA: one stream per GPU",
        }[self.capacity.how]
        return [
            f"capacity {self.capacity.streams} streams per GPU at p99 TTFA <= {self.slo_ms:g} ms ({how}), "
            f"from {table.source or 'the table'} ({table.device}, {table.measured}, {table.software})",
            f"workload as measured: voice {table.voice} on the {table.backend} backend; {table.workload}; "
            "longer texts, other voices or another backend need their own measurement",
            "one replica per GPU, and capacity adds up across replicas (each replica is an independent "
            "server; the routing cost of Ray's proxy or a load balancer was not measured)",
            f"{self.headroom:.0%} headroom per replica for bursts and uneven routing"
            + (
                f"; {self.spare} spare replica(s) to ride out losing replicas at full load"
                if self.spare
                else "; no spare: losing a replica at full load overloads the rest (add --spare 1)"
            ),
            f"one stream alone measured p99 TTFA {table.one_stream_p99_ms:g} ms on this GPU: no plan goes below it",
        ]


def make_plan(
    table: SizingTable, streams: int, slo_ms: float, headroom: float = DEFAULT_HEADROOM, spare: int = 0
) -> Plan:
    """The plan for ``streams`` at ``slo_ms`` on ``table``'s GPU; ``InvalidInput`` names a bad argument."""
    if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
        raise InvalidInput(f"--streams must be a positive integer, got {streams!r}", param="streams")
    if not 0 <= headroom < 1:
        raise InvalidInput(f"--headroom must be in [0, 1), got {headroom!r}", param="headroom")
    if isinstance(spare, bool) or not isinstance(spare, int) or spare < 0:
        raise InvalidInput(f"--spare must be a non-negative integer, got {spare!r}", param="spare")
    capacity = capacity_at(table, slo_ms)
    per_replica = max(1, math.floor(capacity.streams * (1 - headroom)))
    replicas = math.ceil(streams / per_replica) + spare
    return Plan(
        table.gpu,
        table.device,
        streams,
        float(slo_ms),
        capacity,
        headroom,
        per_replica,
        spare,
        replicas,
        replicas,
    )


def describe(plan: Plan, table: SizingTable) -> str:
    """The plan as the lines ``voxserve plan`` prints."""
    lines = [
        f"{plan.gpu} ({plan.device}): {plan.streams} streams at p99 TTFA <= {plan.slo_ms:g} ms",
        f"  capacity per GPU:   {plan.capacity.streams} streams"
        + (" (at least)" if plan.capacity.how == "at_least" else ""),
        f"  planned per replica: {plan.per_replica} streams ({plan.headroom:.0%} headroom)",
        f"  replicas:           {plan.replicas}" + (f" (incl. {plan.spare} spare)" if plan.spare else ""),
        f"  GPUs:               {plan.gpus} x {plan.gpu}",
        f"  Ray Serve:          voxserve serve --ray --backend {table.backend} --device cuda "
        f"--replicas {plan.replicas} --target-ongoing {plan.per_replica}",
        f"  Helm values:        replicaCount={plan.replicas} autoscaling.targetInFlightPerPod={plan.per_replica}",
        "  assumptions:",
        *(f"    - {a}" for a in plan.assumptions(table)),
    ]
    return "\n".join(lines)


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    """The ``voxserve plan`` flags."""
    p.add_argument("--streams", type=int, required=True, help="concurrent streams to serve")
    p.add_argument("--slo-ms", type=float, required=True, help="p99 time-to-first-audio target, ms")
    p.add_argument("--gpu", default=None, help="GPU kind (h100, h200; default: every measured one)")
    p.add_argument(
        "--headroom", type=float, default=DEFAULT_HEADROOM, help="capacity kept free (default 0.2)"
    )
    p.add_argument("--spare", type=int, default=0, help="extra replicas for failures (default 0)")
    p.add_argument(
        "--tables", type=Path, default=None, help="directory of sizing tables (default: the repo's)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def main(args: argparse.Namespace) -> list[Plan]:
    """Run ``voxserve plan``: print a plan per GPU kind asked for; returns them."""
    tables = load_tables(args.tables)
    if args.gpu is not None and args.gpu not in tables:
        raise InvalidInput(
            f"--gpu {args.gpu!r} has no sizing table; measured: {', '.join(sorted(tables))}", param="gpu"
        )
    candidates = [tables[args.gpu]] if args.gpu else [tables[k] for k in sorted(tables)]
    chosen, plans, refused = [], [], []
    for t in candidates:
        try:
            plans.append(make_plan(t, args.streams, args.slo_ms, args.headroom, args.spare))
            chosen.append(t)
        except InvalidInput as e:
            if e.param != "slo_ms" or len(candidates) == 1:
                raise
            refused.append(e)
    if not plans:
        raise refused[0]
    if args.json:
        out = [asdict(p) | {"assumptions": p.assumptions(t)} for p, t in zip(plans, chosen, strict=True)]
        print(json.dumps(out if args.gpu is None else out[0], indent=1))
    else:
        print("\n\n".join(describe(p, t) for p, t in zip(plans, chosen, strict=True)))
        for why in refused:
            print(f"\nnot planned: {why}")
    return plans
