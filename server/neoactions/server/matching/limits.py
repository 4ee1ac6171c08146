"""Size and nesting limits enforced when a trigger is compiled.

They bound both the memory an action can pin in the index and the work one event
can cause, so one careless (or hostile) action cannot slow matching for a tenant.
"""

from __future__ import annotations

#: event-type patterns per action
MAX_PATTERNS = 64
#: length of an event type or an event-type pattern
MAX_TYPE_LENGTH = 255
#: condition nodes (fields, groups, CEL expressions) in one trigger, counted recursively
MAX_CONDITION_NODES = 256
#: nesting of all / any / not groups (and of EventBridge pattern objects)
MAX_DEPTH = 8
#: characters in a field path, and segments in it
MAX_PATH_LENGTH = 256
MAX_PATH_SEGMENTS = 32
#: items in an ``in`` / ``not_in`` list, a ``cidr`` list or an EventBridge value array
MAX_LIST_ITEMS = 1000
#: characters in one string operand
MAX_STRING_LENGTH = 4096
#: characters in a ``regex`` pattern and in a CEL expression
MAX_REGEX_LENGTH = 1024
MAX_CEL_LENGTH = 4096
#: keys in ``context_filters``
MAX_CONTEXT_FILTERS = 32
