"""A step's ``condition``: a CEL expression over ``data``, ``event``, ``vars`` and ``steps``.

Checked when the workflow is saved with the matcher's CEL parts (syntax, undeclared names,
the worst-case cost within the service's CEL limits); evaluated when the step is ready.
"""

from __future__ import annotations

from typing import Any

import cel

from neoactions.domain.errors import InvalidArgument
from neoactions.server.matching.celcost import TooComplex, estimate
from neoactions.server.matching.celparse import CelSyntaxError, parse
from neoactions.server.matching.limits import MAX_CEL_LENGTH, CelLimits

#: the names a condition sees
ROOTS = frozenset({"data", "event", "metadata", "vars", "steps", "execution"})
_SKELETON: dict[str, Any] = {name: {} for name in ROOTS}
_UNDEFINED = "Undefined variable or function"


class StepCondition:
    """A compiled condition."""

    __slots__ = ("_program", "source")

    def __init__(self, source: str, program: Any) -> None:
        self.source = source
        self._program = program

    def evaluate(self, variables: dict[str, Any]) -> bool:
        """True or False; ``ValueError`` with the engine's message when it cannot say."""
        try:
            result = self._program.execute(variables)
        except Exception as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
        if result is True or result is False:
            return result
        raise ValueError(f"the condition returned {type(result).__name__}, not a boolean")


def compile_step_condition(expression: str, where: str, limits: CelLimits) -> StepCondition:
    """Compile ``expression``; ``InvalidArgument`` naming ``where`` if it is not valid CEL,
    names something a condition cannot see, or may cost more than the budget."""
    reason = "INVALID_CONDITION"
    if not expression.strip():
        raise InvalidArgument.field(where, "a condition needs a CEL expression", reason=reason)
    if len(expression) > MAX_CEL_LENGTH:
        raise InvalidArgument.field(where, f"CEL expression longer than {MAX_CEL_LENGTH} characters", reason=reason)
    try:
        program = cel.compile(expression)
    except Exception as exc:
        raise InvalidArgument.field(where, f"invalid CEL expression: {exc}", reason=reason) from None
    try:
        cost = estimate(parse(expression), ROOTS, limits)
    except (CelSyntaxError, TooComplex) as exc:
        raise InvalidArgument.field(where, f"invalid CEL expression: {exc}", reason=reason) from None
    if cost.cost > limits.cost_budget:
        raise InvalidArgument.field(
            where, f"CEL expression may cost {cost.cost:,} steps, over the budget of {limits.cost_budget:,}",
            reason="CEL_TOO_COSTLY",
        )  # fmt: skip
    try:
        program.execute(dict(_SKELETON))
    except RuntimeError as exc:
        if _UNDEFINED in str(exc):
            known = ", ".join(sorted(ROOTS))
            raise InvalidArgument.field(
                where, f"invalid CEL expression: {str(exc).split('.')[0]} (a condition sees: {known})", reason=reason
            ) from None
    except Exception:  # data-dependent errors are fine before the data exists
        pass
    return StepCondition(expression, program)


__all__ = ["ROOTS", "StepCondition", "compile_step_condition"]
