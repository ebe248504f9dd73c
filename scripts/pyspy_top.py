"""Summarize py-spy's collapsed stacks (``--format raw``): busy time per thread and the top frames.

    python scripts/pyspy_top.py stacks.txt [TOP]

Per thread: samples, and the share spent idle (py-spy marks idle samples only with --idle,
as the frame the thread waits in). Then, per thread, the functions with the most samples
anywhere on the stack (inclusive) and at the top of the stack (self). A development tool.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

_LINE = re.compile(r":\d+\)$")


def main(path: str, top: int = 25) -> None:
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            # Group by function, not line: "f (file.py:12)" -> "f (file.py)".
            frames = [_LINE.sub(")", fr) for fr in stack.split(";")]
            thread = frames[0]
            totals[thread] += n
            for frame in set(frames[1:]):
                inclusive[thread][frame] += n
            if len(frames) > 1:
                own[thread][frames[-1]] += n
    for thread, n in totals.most_common():
        print(f"== {thread}: {n} samples")
        print("  inclusive:")
        for frame, k in inclusive[thread].most_common(top):
            print(f"    {100 * k / n:5.1f}%  {frame}")
        print("  self:")
        for frame, k in own[thread].most_common(top):
            print(f"    {100 * k / n:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
