"""CEL at evaluation: the parser reads what the engine reads, only the parts of the event an
expression reads are handed to the engine (with the same answers), an event past the bounds
is not evaluated (no match, explained, never raised), and the time is accounted per tenant."""

from __future__ import annotations

from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neoactions.domain import model
from neoactions.domain.errors import InvalidArgument
from neoactions.server.matching import CelLimits, Matcher
from neoactions.server.matching.celexpr import compile_cel
from neoactions.server.matching.celinput import measure, pruner, reads, rereads
from neoactions.server.matching.celparse import Comprehension, Expr, Ident, children, parse
from neoactions.server.matching.paths import ENVELOPE_FIELDS

# --- the parser against the engine ----------------------------------------------------------

CORPUS = [
    "data.amount > 100 && source == 'billing'",
    "has(data.a.b) ? [1, 2,] : {'a': 1,}.size() > 0",
    '!!(-data.x.y[0].z == 1) || r"\\d" == "\\\\d"',
    "data.items.map(x, x > 1, x * 2).size() > 0",
    "data.items.existsOne(y, y) || data.items.exists_one(y, y)",
    "0x1fu > 1u && .5 < 2.5e-3 && 1e3 > -9223372036854775808",
    "\"\"\"a\"b\"\"\" + '''c'd''' + b'\\xff'.string() != ''",
    "// a comment\ndata.x in [1, 2] // another",
    "timestamp(data.at).getHours() < 12 && duration('1h') > duration('1m')",
    "data.orders.all(o, o.lines.exists(l, l.sku == data.sku && l.qty >= 1))",
    "[1].all(data, data > 0) && data.x == 1",
    "type(data.x) == int && dyn(data.y) == 2.0 && data.z == null",
    "data['a.b'].c % 2 == 0 && data.m[data.k] / 3 * 2 - 1 != 0",
]


def _same_names(tree: Expr, engine: list[str]) -> bool:
    """The identifiers are those the engine lists, macro variables aside (the engine lists
    one where its expansion uses it)."""
    stack, names, bound = [tree], set(), set()
    while stack:
        node = stack.pop()
        if isinstance(node, Ident):
            names.add(node.name)
        if isinstance(node, Comprehension):
            bound.add(node.var)
        stack.extend(children(node))
    return names - bound == set(engine) - bound


@pytest.mark.parametrize("expression", CORPUS)
def test_the_parser_reads_the_variables_the_engine_reads(expression: str) -> None:
    assert _same_names(parse(expression), cel.compile(expression).variables())


_atoms = st.sampled_from(
    ["data.x", "data.items", "data['k']", "source", "1", "2.5", "-3", "1u", "'s'", 'r"r"', "true", "null", "[]", "{}"]
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["!", "-", ""]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
        st.tuples(inner, st.sampled_from(["all", "exists", "exists_one", "map", "filter"]), inner).map(
            lambda t: f"({t[0]}).{t[1]}(v, {t[2]})"
        ),
        st.tuples(inner, st.sampled_from(["size", "contains", "startsWith", "string"])).map(
            lambda t: f"({t[0]}).{t[1]}()"
        ),
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(inner, inner).map(lambda t: "{" + f"{t[0]}: {t[1]}" + "}"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
        inner.map(lambda x: f"has(data.{x.strip('-').replace('.', '_').replace(' ', '')[:1] or 'a'}q.z)"),
    )


@settings(max_examples=150, deadline=None)
@given(st.recursive(_atoms, _compound, max_leaves=12))
def test_what_the_engine_parses_the_parser_parses(expression: str) -> None:
    try:
        program = cel.compile(expression)
    except Exception:
        return  # not CEL (the generator is loose); the engine refuses it on save anyway
    assert _same_names(parse(expression), program.variables())


# --- only what is read reaches the engine ---------------------------------------------------


def test_reads_are_the_paths_below_the_envelope_fields() -> None:
    def read(expression: str) -> Any:
        return reads(parse(expression), ENVELOPE_FIELDS)

    assert read("data.amount > 1 && source == 's'") == {"data": {"amount": None}, "source": None}
    assert read("data.a.b == data.a.c") == {"data": {"a": {"b": None, "c": None}}}
    assert read("data.a.b == 1 && size(data.a) > 0") == {"data": {"a": None}}
    assert read("has(data.a.b)") == {"data": {"a": {"b": None}}}
    assert read("data['a.b'] == 1") == {"data": None}
    assert read("data.items.exists(i, i.x == data.y)") == {"data": {"items": None, "y": None}}
    assert read("[1].all(data, data > 0)") == {}  # the macro's variable, not the field
    assert read("data.m[data.k].z") == {"data": {"m": None, "k": None}}


ENVELOPES = [
    {"data": {"amount": 150, "a": {"b": 1, "c": 1}, "items": [{"x": 1}, {"x": 2}], "y": 2}, "source": "s"},
    {"data": {"amount": "150", "a": [1, 2], "items": [], "y": None}, "source": ""},
    {"data": {"a": {"b": {"c": 1}}, "items": {"x": 1}, "m": {"k": {"z": 3}}, "k": "k"}, "source": "s"},
    {"data": {}, "source": "s", "metadata": {"region": "eu"}},
]
EXPRESSIONS = [
    "data.amount > 100",
    "data.a.b == data.a.c",
    "has(data.a.b) && !has(data.a.z)",
    "has(data.q)",
    "data.items.exists(i, i.x == data.y)",
    "size(data.items) == 2",
    "data.m[data.k].z == 3",
    "data.a.b.c == 1",
    "metadata.region == 'eu' || source == ''",
    "data == {}",
    "data.items.map(i, i.x).size() >= 0",
]


@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_engine_answers_the_same_on_what_is_read_as_on_the_whole_event(
    expression: str, envelope: dict[str, Any]
) -> None:
    program = cel.compile(expression)
    only_read = pruner(reads(parse(expression), ENVELOPE_FIELDS))(envelope)

    def run(variables: dict[str, Any]) -> Any:
        try:
            return program.execute(variables)
        except Exception as exc:
            return type(exc).__name__

    assert run(only_read) == run({k: v for k, v in envelope.items() if k in program.variables()})


def test_a_field_condition_on_a_huge_event_is_not_hindered_by_the_rest() -> None:
    program = compile_cel("data.amount > 100", "cel")
    envelope = {"data": {"amount": 150, "blob": list(range(100_000))}}
    assert program.evaluate(envelope) == (True, True, "")


# --- the bounds at evaluation ---------------------------------------------------------------


def test_measure_counts_values_and_the_longest_list() -> None:
    assert measure([{"a": [1, 2, 3], "b": {"c": "x"}}], 100) == (7, 3)
    assert measure(["x", 1, None], 100) == (3, 0)
    counted, _ = measure([list(range(10_000))], 100)
    assert counted > 100  # stops early but says it is over


LIMITS = CelLimits(max_list_items=10, max_input_values=50)


def test_an_event_with_a_longer_list_than_a_macro_may_iterate_does_not_match_and_says_why() -> None:
    program = compile_cel("data.items.exists(i, i == 3)", "cel", LIMITS)
    assert program.test({"data": {"items": list(range(10))}})
    envelope = {"data": {"items": list(range(11))}}
    assert not program.test(envelope)
    matched, result, error = program.evaluate(envelope)
    assert (matched, result) == (False, None)
    assert "11 items" in error and "max_cel_list_items" in error


def test_without_a_macro_list_length_only_counts_as_values() -> None:
    program = compile_cel("size(data.items) > 20", "cel", LIMITS)
    assert program.test({"data": {"items": list(range(30))}})


def test_an_event_with_more_values_than_allowed_does_not_match_and_says_why() -> None:
    program = compile_cel("size(data.items) > 20", "cel", LIMITS)
    envelope = {"data": {"items": list(range(60)), "other": list(range(10_000))}}
    matched, _, error = program.evaluate(envelope)
    assert not matched and "max_cel_input_values" in error
    assert not program.test(envelope)


# --- through the matcher ----------------------------------------------------------------------


def _action(name: str, conditions: list[Any], tenant: str = "t1") -> model.Action:
    return model.Action(
        tenant=tenant,
        name=name,
        trigger=model.Trigger(event_types=["orders.*"], conditions=conditions),
        handler=model.HandlerSpec(type="log"),
    )


def _event(data: dict[str, Any], tenant: str = "t1") -> model.Event:
    return model.Event(id="e1", tenant=tenant, type="orders.created", data=data)


def test_the_matcher_holds_cel_to_its_limits_and_explains_a_refused_event() -> None:
    matcher = Matcher(LIMITS)
    matcher.put(_action("big", [model.CelCondition("data.items.exists(i, i == 3)")]))
    assert [a.name for a in matcher.match("t1", _event({"items": [3]}))] == ["big"]
    event = _event({"items": list(range(20))})
    assert matcher.match("t1", event) == []
    [explained] = matcher.explain("t1", event)
    assert explained.reason == "conditions_not_met"
    assert "max_cel_list_items" in explained.conditions[0].error


def test_a_trigger_over_the_matchers_budget_is_refused_by_compile() -> None:
    matcher = Matcher(CelLimits(cost_budget=50))
    with pytest.raises(Exception) as err:
        matcher.compile(_action("x", [{"cel": "data.items.exists(i, i == 3)"}]).trigger)
    assert getattr(err.value, "reason", "") == "CEL_TOO_COSTLY"
    # a stored action that no longer fits is kept, never matches, and is reported
    failures = matcher.load("t1", [_action("x", [model.CelCondition("data.items.exists(i, i == 3)")])])
    assert list(failures) == ["x"]
    assert matcher.match("t1", _event({"items": [3]})) == []


def test_matching_time_is_accounted_to_tenants_with_cel_conditions() -> None:
    matcher = Matcher()
    matcher.put(_action("plain", [{"field": "data.x", "operator": "equals", "value": 1}], tenant="plain"))
    matcher.put(_action("cel", [model.CelCondition("data.x == 1")], tenant="celful"))
    for _ in range(5):
        assert matcher.match("plain", _event({"x": 1}, "plain"))
        assert matcher.match("celful", _event({"x": 1}, "celful"))
    assert matcher.cel_seconds("plain") == 0.0
    assert matcher.cel_seconds("celful") > 0.0
    assert matcher.cel_seconds() == matcher.cel_seconds("celful")
    # replacing the condition by a plain one stops the accounting
    matcher.put(_action("cel", [{"field": "data.x", "operator": "equals", "value": 1}], tenant="celful"))
    spent = matcher.cel_seconds("celful")
    matcher.match("celful", _event({"x": 1}, "celful"))
    assert matcher.cel_seconds("celful") == spent


# --- what a macro body reads again for every item ---------------------------------------------


def test_rereads_are_the_event_parts_a_macro_body_reads() -> None:
    def reread(expression: str) -> tuple[tuple[str, ...], ...]:
        return rereads(parse(expression), ENVELOPE_FIELDS)

    assert reread("data.items.all(i, i.price > data.min.value)") == (("data", "min"),)
    assert reread("data.items.exists(i, i == source)") == (("source",),)
    assert reread("data.items.exists(i, data.m[i] == 1 || size(data) > 0)") == (("data",),)
    assert reread("data.items.all(i, i > 0) && data.min > 0") == ()
    assert reread("data.a.exists(x, data.b.exists(y, x == y))") == (("data", "b"),)


def test_an_event_part_a_macro_reads_per_item_is_held_small() -> None:
    program = compile_cel("data.items.all(i, i.price > data.min)", "cel")
    items = [{"price": 5}] * 200
    assert program.evaluate({"data": {"items": items, "min": 1}}) == (True, True, "")
    big_min = {"data": {"items": items, "min": list(range(100))}}
    matched, _, error = program.evaluate(big_min)
    assert not matched and "data.min holds more than 16 values" in error
    assert not program.test(big_min)


def test_reading_a_field_copies_it() -> None:
    # each data.x may be a map of every value of the event, copied 200 times
    with pytest.raises(InvalidArgument) as err:
        compile_cel(" || ".join(f"data.x == {i}" for i in range(200)), "cel")
    assert err.value.reason == "CEL_TOO_COSTLY"
