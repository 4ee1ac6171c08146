"""``cel`` conditions through ``common-expression-language`` (a maintained Rust CEL engine).

The expression sees every envelope field as a variable (``data.amount > 100 &&
source == "billing"``). It must evaluate to a boolean; an evaluation error (a
missing key, a type mismatch) or a non-boolean result makes the condition false,
and the error is shown by explain.

Cost: an expression is refused when saved if its worst case over any event within
:class:`~.limits.CelLimits` is over the budget (:mod:`.celcost` estimates it from the
syntax tree :mod:`.celparse` reads). Before each evaluation the parts of the event it
reads are measured (:mod:`.celinput`); an event past those bounds is not evaluated and
does not match. So one evaluation stays within the budget, a few milliseconds.
"""

from __future__ import annotations

from typing import Any

import cel

from neoactions.domain.errors import InvalidArgument

from . import limits
from .celcost import Estimate, TooComplex, estimate
from .celinput import measure, pruner, reads, rereads
from .celparse import CelSyntaxError, Expr, parse
from .limits import DEFAULT_CEL_LIMITS, CelLimits
from .paths import ENVELOPE_FIELDS

# Every envelope field with an empty value: evaluating against it at compile time
# finds undeclared identifiers and functions, which cel.compile does not reject.
_SKELETON: dict[str, Any] = {
    "id": "",
    "type": "",
    "source": "",
    "subject": "",
    "aggregate_type": "",
    "aggregate_id": "",
    "time": "",
    "data": {},
    "metadata": {},
    "correlation_id": "",
    "causation_id": "",
    "tenant": "",
}
_UNDEFINED = "Undefined variable or function"


class CelProgram:
    """A compiled CEL expression with its worst-case cost."""

    __slots__ = ("_limits", "_program", "_rereads", "_variables", "cost", "source")

    def __init__(self, source: str, program: cel.Program, tree: Expr, cost: Estimate, limits: CelLimits) -> None:
        self.source = source
        self._program = program
        #: the estimate the expression was accepted with
        self.cost = cost
        self._limits = limits
        # The engine converts every value it is given on each call; it is given only the
        # parts of the envelope the expression reads.
        self._variables = pruner(reads(tree, ENVELOPE_FIELDS))
        self._rereads = rereads(tree, ENVELOPE_FIELDS)

    def _refusal(self, variables: dict[str, Any]) -> str:
        """Why the event is too large to evaluate against, or ``""``."""
        limits = self._limits
        values, longest = measure(variables.values(), limits.max_input_values)
        if values > limits.max_input_values:
            return (
                f"not evaluated: the event fields it reads hold more than {limits.max_input_values} values "
                "(max_cel_input_values)"
            )
        if self.cost.iterates and longest > limits.max_list_items:
            return (
                f"not evaluated: a list or map it reads has {longest} items, more than the "
                f"{limits.max_list_items} a macro may iterate (max_cel_list_items)"
            )
        for path in self._rereads:
            value = variables.get(path[0])
            if len(path) == 2:
                value = value.get(path[1]) if type(value) is dict else None
            if value is not None and measure((value,), limits.max_reread_values)[0] > limits.max_reread_values:
                return (
                    f"not evaluated: {'.'.join(path)} holds more than {limits.max_reread_values} values, "
                    "and a macro reads it again for every item"
                )
        return ""

    def evaluate(self, envelope: dict[str, Any]) -> tuple[bool, Any, str]:
        """(matched, raw result, error message)."""
        variables = self._variables(envelope)
        refusal = self._refusal(variables)
        if refusal:
            return False, None, refusal
        try:
            result = self._program.execute(variables)
        except Exception as exc:  # the engine raises KeyError, TypeError, RuntimeError...
            return False, None, f"{type(exc).__name__}: {exc}"
        if result is True or result is False:
            return result, result, ""
        return False, result, f"expression returned {type(result).__name__}, not bool"

    def test(self, envelope: dict[str, Any]) -> bool:
        variables = self._variables(envelope)
        if self._refusal(variables):
            return False
        try:
            return self._program.execute(variables) is True
        except Exception:  # an evaluation error means "does not match"
            return False


def compile_cel(expression: Any, where: str, cel_limits: CelLimits = DEFAULT_CEL_LIMITS) -> CelProgram:
    """Parse and check a CEL expression and its worst-case cost; errors name ``where``."""
    reason = "INVALID_CONDITION"
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgument.field(where, "cel needs a non-empty expression", reason=reason)
    if len(expression) > limits.MAX_CEL_LENGTH:
        raise InvalidArgument.field(
            where, f"CEL expression longer than {limits.MAX_CEL_LENGTH} characters", reason=reason
        )
    try:
        program = cel.compile(expression)
    except Exception as exc:  # the engine reports parse errors as ValueError
        raise InvalidArgument.field(where, f"invalid CEL expression: {exc}", reason=reason) from None
    try:
        tree = parse(expression)
        cost = estimate(tree, ENVELOPE_FIELDS, cel_limits)
    except (CelSyntaxError, TooComplex) as exc:
        raise InvalidArgument.field(where, f"invalid CEL expression: {exc}", reason=reason) from None
    _check_budget(cost, where, cel_limits)  # before running it, even on an empty envelope
    try:
        program.execute(dict(_SKELETON))
    except RuntimeError as exc:
        if _UNDEFINED in str(exc):
            raise InvalidArgument.field(
                where, f"invalid CEL expression: {str(exc).split('.')[0]}", reason=reason
            ) from None
    except Exception:  # data-dependent errors (missing keys, types) are fine at compile time
        pass
    return CelProgram(expression, program, tree, cost, cel_limits)


def _check_budget(cost: Estimate, where: str, limits: CelLimits) -> None:
    if cost.cost > limits.cost_budget:
        raise InvalidArgument.field(
            where,
            f"CEL expression may cost {cost.cost:,} steps on a large event, over the budget of "
            f"{limits.cost_budget:,} (cel_cost_budget); hint: do not nest macros (all, exists, map, filter) "
            f"over the event's lists, prefer exists/all to map/filter, and keep string work out of macros",
            reason="CEL_TOO_COSTLY",
        )
