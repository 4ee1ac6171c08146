"""`make bench`: run every benchmark module and print one markdown report.

Each ``bench/bench_*.py`` exposes ``main() -> str`` returning a markdown section
(its own table with a baseline measured in the same run). Pass module names to
run only some: ``python -m bench matching wasm``. Modules in ``ON_REQUEST`` run only
when named (``python -m bench soak``: half an hour).
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from pathlib import Path

#: benchmarks left out of the run without names
ON_REQUEST = {"soak"}


def _header() -> str:
    import os

    return (
        f"# neoactions benchmarks — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.platform()}\n"
    )


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    wanted = argv or [n for n in names if n not in ON_REQUEST]
    print(_header())
    for name in wanted:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n## {name}\n", flush=True)
        print(module.main(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
