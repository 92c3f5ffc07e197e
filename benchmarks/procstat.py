"""CPU time of a process tree from /proc, shared by the benchmarks that report CPU cost."""

from __future__ import annotations

import os
from pathlib import Path


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid``, its live descendants and the children
    they have already reaped (a finished background encoder, a replaced worker), from
    /proc; NaN where /proc is not available."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    try:
        while todo:
            current = todo.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return float("nan")
    return total
