"""Flow control: per-action concurrency, rate limits per action and tenant, circuit breakers.

The dispatcher asks :meth:`FlowControl.admit` before each attempt and gives the
lease back after it; a refusal delays the execution without spending an attempt.
Two implementations: :class:`InProcessFlowControl` (embedded mode) and
:class:`~neoactions.server.flow.redis_flow.RedisFlowControl` (shared by every worker), an
adapter imported from its module, not from this package. See ``docs/flow-control.md``.
"""

from neoactions.server.flow.config import BreakerConfig, FlowControlConfig
from neoactions.server.flow.factory import create_flow_control
from neoactions.server.flow.inprocess import InProcessFlowControl
from neoactions.server.flow.port import (
    Admission,
    AdmissionRequest,
    Admitted,
    BreakerState,
    FlowControl,
    Lease,
    RefusalReason,
    Refused,
)
from neoactions.server.flow.targets import breaker_target

__all__ = [
    "Admission",
    "AdmissionRequest",
    "Admitted",
    "BreakerConfig",
    "BreakerState",
    "FlowControl",
    "FlowControlConfig",
    "InProcessFlowControl",
    "Lease",
    "RefusalReason",
    "Refused",
    "breaker_target",
    "create_flow_control",
]
