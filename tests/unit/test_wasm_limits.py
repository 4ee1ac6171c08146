"""Operator maxima of wasm guests' limits: refused above them, defaults lowered to them."""

from __future__ import annotations

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.sandboxes.wasm.config import MIB, Limits, Maxima


def test_limits_above_the_maxima_are_refused_naming_the_field() -> None:
    maxima = Maxima(memory_mb=256, timeout_seconds=30)
    maxima.check({"limits": {"memory_mb": 256, "timeout_seconds": 30}})
    with pytest.raises(InvalidArgument) as err:
        maxima.check({"limits": {"memory_mb": 2048}})
    assert err.value.violations[0].field == "limits.memory_mb" and "wasm_max_memory_mb" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        maxima.check({"limits": {"timeout_seconds": 30.5}})
    assert err.value.violations[0].field == "limits.timeout_seconds"


def test_defaults_never_exceed_the_maxima() -> None:
    small = Maxima(memory_mb=32, timeout_seconds=1)
    limits = Limits.from_config({"language": "python", "source": "x"}, small)
    assert (limits.memory_bytes, limits.timeout_seconds) == (32 * MIB, 1)
    assert Limits.from_config({"language": "python", "source": "x"}).memory_bytes == 128 * MIB


def test_maxima_from_settings() -> None:
    assert Maxima.from_settings({}) == Maxima(512, 60.0)
    assert Maxima.from_settings({"wasm_max_memory_mb": "64", "wasm_max_timeout_seconds": 2}) == Maxima(64, 2.0)
    with pytest.raises(ValueError):
        Maxima.from_settings({"wasm_max_memory_mb": 0})
