from __future__ import annotations

import random

import pytest

from neoactions.domain.model import RetryPolicy
from neoactions.server.retry import retry_delay_ms


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [("exponential", [100, 200, 400, 800, 1000]), ("linear", [100, 200, 300, 400, 500]), ("fixed", [100] * 5)],
)
def test_seed_formula_without_jitter(backoff: str, expected: list[int]) -> None:
    policy = RetryPolicy(backoff=backoff, initial_delay_ms=100, max_delay_ms=1000, jitter=False)
    assert [retry_delay_ms(policy, n) for n in range(1, 6)] == expected


def test_jitter_adds_up_to_a_quarter() -> None:
    policy = RetryPolicy(initial_delay_ms=400, jitter=True)
    rng = random.Random(7)
    delays = [retry_delay_ms(policy, 1, rng) for _ in range(2000)]
    assert min(delays) >= 400 and max(delays) <= 500
    assert max(delays) - min(delays) > 90  # it does spread over the range
