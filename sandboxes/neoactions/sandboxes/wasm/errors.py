"""The one internal error of the wasm runner, turned into a ``Failure`` at its edge."""

from __future__ import annotations


class SandboxProblem(Exception):
    """Something stopped an execution before or around the guest code.

    ``type`` is the stable ``ExecutionError.type`` the attempt fails with
    (``runtime_unavailable``, ``module_not_found``, ...). None of these are
    retryable: they come from configuration or from the installation, which a
    retry does not change.
    """

    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type = type
        self.message = message


__all__ = ["SandboxProblem"]
