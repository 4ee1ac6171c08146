"""``cel`` conditions through ``common-expression-language`` (a maintained Rust CEL engine).

The expression sees every envelope field as a variable (``data.amount > 100 &&
source == "billing"``). It must evaluate to a boolean; an evaluation error (a
missing key, a type mismatch) or a non-boolean result makes the condition false,
and the error is shown by explain.
"""

from __future__ import annotations

from typing import Any

import cel

from neoactions.server.errors import InvalidArgument

from . import limits
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
    """A compiled CEL expression."""

    __slots__ = ("_program", "_roots", "source")

    def __init__(self, source: str, program: cel.Program) -> None:
        self.source = source
        self._program = program
        # The engine converts every variable it is given to CEL values on each call;
        # passing only the envelope fields the expression names saves most of that cost.
        self._roots = tuple(v for v in program.variables() if v in ENVELOPE_FIELDS)

    def _variables(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return {k: envelope[k] for k in self._roots if k in envelope}

    def evaluate(self, envelope: dict[str, Any]) -> tuple[bool, Any, str]:
        """(matched, raw result, error message)."""
        try:
            result = self._program.execute(self._variables(envelope))
        except Exception as exc:  # the engine raises KeyError, TypeError, RuntimeError...
            return False, None, f"{type(exc).__name__}: {exc}"
        if result is True or result is False:
            return result, result, ""
        return False, result, f"expression returned {type(result).__name__}, not bool"

    def test(self, envelope: dict[str, Any]) -> bool:
        try:
            return self._program.execute(self._variables(envelope)) is True
        except Exception:  # an evaluation error means "does not match"
            return False


def compile_cel(expression: Any, where: str) -> CelProgram:
    """Parse and check a CEL expression; errors name ``where``."""
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
        program.execute(dict(_SKELETON))
    except RuntimeError as exc:
        if _UNDEFINED in str(exc):
            raise InvalidArgument.field(
                where, f"invalid CEL expression: {str(exc).split('.')[0]}", reason=reason
            ) from None
    except Exception:  # data-dependent errors (missing keys, types) are fine at compile time
        pass
    return CelProgram(expression, program)
