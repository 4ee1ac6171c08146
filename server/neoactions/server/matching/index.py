"""The per-tenant index: a trie on event-type segments whose nodes file actions by literal values.

Layout
------
* A trie node per pattern prefix, with literal children, a ``*`` child and a ``**``
  child. A pattern's last node holds a :class:`Bucket`.
* A bucket files each of its actions under **one** literal conjunct of its trigger
  (an ``equals`` / ``in`` condition, a context filter, an exact-values EventBridge
  array): ``tables[(path, elementwise)][value key] -> actions``. Actions with no
  literal conjunct are ``unkeyed``.

Matching an event: the buckets whose patterns match its type (a trie walk, cached
per event type) give, for each table, one dict lookup with the event's value at that
path, plus the unkeyed actions. Only those candidates are evaluated in full, and the
winners are sorted by (priority desc, created_at, name) — the order a naive loop
over every action gives, since names are unique within a tenant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from neoactions.domain import model

from .compiler import CompiledTrigger
from .eventarrays import elements, leaf_reader
from .eventtypes import GLOBSTAR, STAR
from .nodes import IndexKey
from .paths import MISSING, Segments, getter
from .values import scalar_key

SortKey = tuple[int, datetime, str]
TableKey = tuple[Segments, bool]
#: distinct event types whose trie walk is cached per tenant (cleared when full)
TYPE_CACHE_SIZE = 4096


def sort_key(action: model.Action) -> SortKey:
    """Critical first, then older first, then by name (unique per tenant: a total order)."""
    created = action.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (-int(action.priority), created, action.name)


class Entry:
    """One action of a tenant with its compiled trigger (``None`` when it failed to compile)."""

    __slots__ = ("action", "active", "compiled", "error", "key", "sort_key", "test")

    def __init__(self, action: model.Action, compiled: CompiledTrigger | None, error: str = "") -> None:
        self.action = action
        self.compiled = compiled
        self.error = error
        self.sort_key = sort_key(action)
        # Frozen now: a caller may flip ``action.enabled`` in place before calling put again,
        # and removal must still undo exactly what was filed.
        self.active = compiled is not None and action.enabled
        #: the trigger's conditions as one function, read straight off the entry when matching
        self.test = compiled.test if compiled is not None else _never
        #: the conjunct this entry is filed under in its buckets, if any
        self.key: IndexKey | None = None


class Bucket:
    """The enabled actions of one pattern, filed by one literal conjunct each."""

    __slots__ = ("readers", "size", "tables", "unkeyed")

    def __init__(self) -> None:
        self.unkeyed: set[Entry] = set()
        self.tables: dict[TableKey, dict[Any, set[Entry]]] = {}
        #: per table, the function reading its path from an envelope
        self.readers: dict[TableKey, Callable[[dict[str, Any]], Any]] = {}
        self.size = 0

    def add(self, entry: Entry) -> None:
        self.size += 1
        key = entry.key
        if key is None:
            self.unkeyed.add(entry)
            return
        table_key = (key.segments, key.elementwise)
        table = self.tables.get(table_key)
        if table is None:
            table = self.tables[table_key] = {}
            # elementwise (EventBridge) tables read through arrays, as the pattern does
            self.readers[table_key] = leaf_reader(key.segments) if key.elementwise else getter(key.segments)
        for value_key in key.keys:
            table.setdefault(value_key, set()).add(entry)

    def discard(self, entry: Entry) -> None:
        self.size -= 1
        key = entry.key
        if key is None:
            self.unkeyed.discard(entry)
            return
        table_key = (key.segments, key.elementwise)
        table = self.tables[table_key]
        for value_key in key.keys:
            filed = table[value_key]
            filed.discard(entry)
            if not filed:
                del table[value_key]
        if not table:
            del self.tables[table_key]
            del self.readers[table_key]

    def collect(self, envelope: dict[str, Any], out: set[Entry]) -> None:
        """Add the entries this event could match to ``out``."""
        if self.unkeyed:
            out.update(self.unkeyed)
        readers = self.readers
        for table_key, table in self.tables.items():
            seen = readers[table_key](envelope)
            if seen is MISSING:
                continue
            if table_key[1] and type(seen) is list:  # elementwise (EventBridge) table
                for item in elements(seen):
                    filed = table.get(scalar_key(item))
                    if filed:
                        out.update(filed)
            else:
                filed = table.get(scalar_key(seen))
                if filed:
                    out.update(filed)


class _Node:
    __slots__ = ("bucket", "children", "globstar", "star")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.star: _Node | None = None
        self.globstar: _Node | None = None
        self.bucket: Bucket | None = None

    def child(self, segment: str) -> _Node | None:
        if segment == STAR:
            return self.star
        if segment == GLOBSTAR:
            return self.globstar
        return self.children.get(segment)

    def is_empty(self) -> bool:
        return self.bucket is None and not self.children and self.star is None and self.globstar is None


class TenantIndex:
    """All actions of one tenant, indexed for :meth:`match`. Not thread-safe (one event loop)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._root = _Node()
        self._types: dict[str, tuple[Bucket, ...]] = {}
        self._path_use: Counter[TableKey] = Counter()

    # --- changes ---------------------------------------------------------------

    def put(self, entry: Entry) -> None:
        """Insert or replace the action named ``entry.action.name``."""
        self.remove(entry.action.name)
        self.entries[entry.action.name] = entry
        if entry.active:
            assert entry.compiled is not None
            entry.key = self._choose_key(entry.compiled)
            if entry.key is not None:
                self._path_use[(entry.key.segments, entry.key.elementwise)] += 1
            for pattern in entry.compiled.pattern_segments:
                self._bucket_for(pattern).add(entry)

    def remove(self, name: str) -> None:
        entry = self.entries.pop(name, None)
        if entry is None or not entry.active:
            return
        assert entry.compiled is not None
        for pattern in entry.compiled.pattern_segments:
            self._unfile(self._root, pattern, 0, entry)
        if entry.key is not None:
            self._path_use[(entry.key.segments, entry.key.elementwise)] -= 1
        entry.key = None

    def _choose_key(self, compiled: CompiledTrigger) -> IndexKey | None:
        """The most selective literal conjunct: fewest values, then a path already probed."""
        # The trie already sorts by type: a key on it would only add lookups.
        keys = [k for k in compiled.index_keys() if k.segments != ("type",)]
        if not keys:
            return None
        return min(keys, key=lambda k: (len(k.keys), -self._path_use[(k.segments, k.elementwise)]))

    def _bucket_for(self, pattern: tuple[str, ...]) -> Bucket:
        node = self._root
        for segment in pattern:
            nxt = node.child(segment)
            if nxt is None:
                nxt = _Node()
                if segment == STAR:
                    node.star = nxt
                elif segment == GLOBSTAR:
                    node.globstar = nxt
                else:
                    node.children[segment] = nxt
                self._types.clear()  # a new node can change which buckets a type reaches
            node = nxt
        if node.bucket is None:
            node.bucket = Bucket()
            self._types.clear()
        return node.bucket

    def _unfile(self, node: _Node, pattern: tuple[str, ...], i: int, entry: Entry) -> bool:
        """Remove ``entry`` under ``pattern``; prune emptied nodes. True if ``node`` is now empty."""
        if i == len(pattern):
            bucket = node.bucket
            if bucket is not None:
                bucket.discard(entry)
                if bucket.size == 0:
                    node.bucket = None
                    self._types.clear()
            return node.is_empty()
        segment = pattern[i]
        nxt = node.child(segment)
        if nxt is not None and self._unfile(nxt, pattern, i + 1, entry):
            if segment == STAR:
                node.star = None
            elif segment == GLOBSTAR:
                node.globstar = None
            else:
                del node.children[segment]
            self._types.clear()
        return node.is_empty()

    # --- lookups ---------------------------------------------------------------

    def buckets_for_type(self, event_type: str) -> tuple[Bucket, ...]:
        """The buckets of every pattern matching ``event_type`` (cached per type)."""
        cached = self._types.get(event_type)
        if cached is not None:
            return cached
        segments = event_type.split(".")
        found: dict[int, Bucket] = {}
        visited: set[tuple[int, int]] = set()
        self._walk(self._root, segments, 0, found, visited)
        buckets = tuple(found.values())
        if len(self._types) >= TYPE_CACHE_SIZE:
            self._types.clear()
        self._types[event_type] = buckets
        return buckets

    def _walk(
        self,
        node: _Node,
        segments: list[str],
        i: int,
        found: dict[int, Bucket],
        visited: set[tuple[int, int]],
    ) -> None:
        # (node, position) pairs are visited once, so several '**' stay polynomial.
        state = (id(node), i)
        if state in visited:
            return
        visited.add(state)
        if node.globstar is not None:
            for j in range(i, len(segments) + 1):  # '**' consumes zero or more segments
                self._walk(node.globstar, segments, j, found, visited)
        if i == len(segments):
            if node.bucket is not None:
                found[id(node.bucket)] = node.bucket
            return
        child = node.children.get(segments[i])
        if child is not None:
            self._walk(child, segments, i + 1, found, visited)
        if node.star is not None:
            self._walk(node.star, segments, i + 1, found, visited)

    def match(self, envelope: dict[str, Any]) -> list[model.Action]:
        """The enabled actions matching the event, in priority order."""
        buckets = self.buckets_for_type(envelope["type"])
        if not buckets:
            return []
        candidates: set[Entry] = set()
        for bucket in buckets:
            bucket.collect(envelope, candidates)
        hits = [e for e in candidates if e.test(envelope)]
        hits.sort(key=_entry_order)
        return [e.action for e in hits]


def _entry_order(entry: Entry) -> SortKey:
    return entry.sort_key


def _never(envelope: dict[str, Any]) -> bool:
    return False


# --- event waits: the second kind of subscriber ----------------------------------------------


class _Waiter:
    """What a wait is filed as: the few fields of an action an :class:`Entry` reads."""

    __slots__ = ("created_at", "enabled", "name", "priority")

    def __init__(self, name: str) -> None:
        self.name = name
        self.priority = model.Priority.NORMAL
        self.created_at = _EPOCH
        self.enabled = True


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WaitIndex:
    """One tenant's event waits (workflow steps waiting for an event), filed in a trie and
    literal tables of their own exactly as actions are, so a published event finds the waits
    it satisfies with the same lookups, never by scanning them. Keyed by a wait id."""

    def __init__(self) -> None:
        self._index = TenantIndex()

    def put(self, wait_id: str, compiled: CompiledTrigger) -> None:
        waiter: Any = _Waiter(wait_id)
        self._index.put(Entry(waiter, compiled))

    def remove(self, wait_id: str) -> None:
        self._index.remove(wait_id)

    def __len__(self) -> int:
        return len(self._index.entries)

    def __contains__(self, wait_id: object) -> bool:
        return wait_id in self._index.entries

    def match(self, envelope: dict[str, Any]) -> list[str]:
        """The ids of the waits ``envelope`` satisfies."""
        return [waiter.name for waiter in self._index.match(envelope)]
