"""Durable workflows: the ``workflow`` handler type, whose runs drive a graph of steps.

A run is an execution of handler type ``workflow``; each attempt of it *drives* the run
(:mod:`.driver`): it reads the run's stored steps, records what finished, starts the steps
now ready — handler and action steps as child executions through the ordinary runners —
and suspends (``waiting``, holding nothing) until a child ends, a timer is due or an
awaited event arrives (:mod:`.waits`, entries in the matcher's index). The DSL is
:mod:`.spec`; what is stored per step, :mod:`.rows`; the engine's entry, :mod:`.service`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rows import StepRun, StepStatus, WorkflowStore
    from .service import Workflows
    from .spec import Workflow, check_workflow, parse_workflow

_HOMES = {
    "StepRun": "rows",
    "StepStatus": "rows",
    "WorkflowStore": "rows",
    "Workflows": "service",
    "Workflow": "spec",
    "check_workflow": "spec",
    "parse_workflow": "spec",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = ["StepRun", "StepStatus", "Workflow", "WorkflowStore", "Workflows", "check_workflow", "parse_workflow"]
