"""How long one CEL condition holds the event loop at its worst: accepted expressions near
the cost budget, each on an event as bad for it as the bounds allow (``CelLimits``
defaults, 256 KiB events). Prints the estimate and the time of ``CelProgram.test`` (best
and median of a few runs), which is everything matching does for that condition.

    .venv/bin/python -m bench.bench_cel
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from neoactions.server.matching.celexpr import compile_cel
from neoactions.server.matching.limits import DEFAULT_CEL_LIMITS

S = DEFAULT_CEL_LIMITS.max_string_bytes
N = DEFAULT_CEL_LIMITS.max_list_items
RUNS = 15

CASES: list[tuple[str, dict[str, Any]]] = [
    (
        'data.orders.exists(o, o.lines.exists(l, l.sku == "x"))',
        {"orders": [{"lines": [{"sku": "y"}] * 200}] + [{"lines": []}] * (N - 1)},
    ),
    (
        'data.orders.exists(o, o.lines.exists(l, l.sku == "x" || l.sku == "z"))',
        {"orders": [{"lines": [{"sku": "y"}] * 200}] + [{"lines": []}] * (N - 1)},
    ),
    ('data.items.exists(i, i.tags.exists(t, t == "x"))', {"items": [{"tags": ["a"]} for _ in range(N)]}),
    ("data.items.all(i, i.price > 0)", {"items": [{"price": 1, "pad": {}} for _ in range(N)]}),
    ("data.items.exists_one(i, i.primary)", {"items": [{"primary": True}] * N}),
    (" || ".join(f'data.s{i}.contains("zz")' for i in range(6)), {f"s{i}": "ab" * (S // 12 - 8) for i in range(6)}),
    ('data.s.matches("^(a|b)+c$")', {"s": "ab" * (S // 2 - 8)}),
    ("data.x in data.items", {"x": {"a": 1}, "items": [{"a": 2}] * 495}),
    ("data.x == data.y", {"x": {str(i): i for i in range(495)}, "y": {str(i): i for i in range(495)}}),
    ("data.a == data.b || data.a == data.c", {k: {str(i): i for i in range(330)} for k in "abc"}),
    ("data.items.all(i, i in data.allowed)", {"items": [1] * N, "allowed": [*range(2, 16), 1]}),
    (
        "data.items.all(i, i.price > data.min.value)",
        {"items": [{"price": 5}] * N, "min": {"value": 1, "pad": list(range(13))}},
    ),
    ("data.s + data.s + data.s == data.t", {"s": "a" * (S // 4), "t": "b" * (S // 4)}),
    ("size(data) > 3", {"items": [{}] * 998}),
    ("size(data) > 3", {"items": [[]] * 998}),
    ("size(data) > 3", {"m": {str(i): {} for i in range(499)}}),
]


def main() -> None:
    worst = 0.0
    print(f"{'best ms':>8} {'median':>8} {'estimate':>9}  expression")
    for expression, data in CASES:
        program = compile_cel(expression, "cel")
        envelope = {"type": "bench.cel", "source": "bench", "subject": "", "data": data, "metadata": {}}
        _, _, error = program.evaluate(envelope)
        assert not error.startswith("not evaluated"), (expression, error)
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            program.test(envelope)
            times.append((time.perf_counter() - started) * 1000)
        worst = max(worst, statistics.median(times))
        print(f"{min(times):8.2f} {statistics.median(times):8.2f} {program.cost.cost:9,}  {expression[:70]}")
    budget = DEFAULT_CEL_LIMITS.cost_budget
    print(f"worst median: {worst:.2f} ms (budget {budget:,} steps, {budget / 10_000:.0f} ms at 0.1 µs a step)")


if __name__ == "__main__":
    main()
