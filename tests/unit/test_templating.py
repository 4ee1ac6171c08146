from __future__ import annotations

import re
from typing import Any

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.server.settings import Settings
from neoactions.server.templating import ConfigRenderer, TemplateLimits, TemplateRenderError

CTX = {
    "data": {"amount": 150, "user": {"email": "ada@example.com"}, "when": "2026-11-22T10:30:00+00:00"},
    "event": {"type": "orders.created"},
    "metadata": {"ip": "10.0.0.7"},
}


def test_renders_text_native_values_and_nested_structures() -> None:
    r = ConfigRenderer()
    out = r.render(
        {
            "to": "{{ data.user.email }}",
            "subject": "Order on {{ event.type }} from {{ metadata.ip }}",
            "amount": "{{ data.amount }}",
            "double": ["{{ data.amount * 2 }}", "plain"],
            "day": "{{ data.when | date_format('%d/%m/%Y') }}",
            "n": 3,
        },
        CTX,
    )
    assert out == {
        "to": "ada@example.com",
        "subject": "Order on orders.created from 10.0.0.7",
        "amount": 150,
        "double": [300, "plain"],
        "day": "22/11/2026",
        "n": 3,
    }


def test_undefined_names_and_unsafe_access_fail_the_render() -> None:
    r = ConfigRenderer()
    with pytest.raises(TemplateRenderError, match="nope"):
        r.render({"a": "{{ data.nope }}"}, CTX)
    with pytest.raises(TemplateRenderError, match="unsafe"):
        r.render({"a": "{{ data.__class__.__mro__ }}"}, CTX)


def test_raw_keys_are_left_alone_and_bad_templates_are_refused_on_save() -> None:
    r = ConfigRenderer()
    assert r.render({"source": "x = '{{ not rendered }}'"}, CTX, frozenset({"source"})) == {
        "source": "x = '{{ not rendered }}'"
    }
    with pytest.raises(InvalidArgument) as err:
        r.check({"headers": {"x": "{{ data.a "}}, "handler.config")
    assert err.value.violations[0].field == "handler.config.headers.x"
    assert err.value.reason == "INVALID_TEMPLATE"


# --- limits ---------------------------------------------------------------------------------

SMALL = TemplateLimits(max_range=100, max_length=1000, max_steps=500, max_seconds=5.0)


def _refused(template: str, match: str, limits: TemplateLimits = SMALL, ctx: dict[str, Any] | None = None) -> None:
    with pytest.raises(TemplateRenderError, match=match):
        ConfigRenderer(limits).render({"a": template}, ctx if ctx is not None else CTX)


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{{ range(101)|list }}", "range"),
        ("{{ range(10**30)|list }}", "range"),
        ("{{ 'ab' * 501 }}", "repetition"),
        ("{{ [1, 2] * 501 }}", "repetition"),
        ("{{ 501 * 'ab' }}", "repetition"),
        ("{{ 9 ** (9 ** 7) }}", "power"),
        ("{{ 2 ** 4097 }}", "power"),
        ("{{ (2 ** 4000) * (2 ** 200) }}", "product"),
        ("{{ ('a' * 600) + ('a' * 600) }}", "concatenation"),
        ("{{ ('a' * 600) ~ ('a' * 600) }}", "concatenation"),
        ("{{ '%01000d' % 1 }}", "formatted"),
        ("{{ '%*d' % (5000, 1) }}", "formatted"),
        ("{{ ('%s'|format('a' * 990)) ~ ('x' * 20) }}", "concatenation"),
        ("{{ '{:>5000}'.format(1) }}", "format width"),
        ("{{ '{0:{1}}'.format('a', 5000) }}", "format width"),
        ("{{ '{0}{0}'.format('a' * 600) }}", "formatted"),
        ("{{ 'a'|center(5000) }}", "centered"),
        ("{{ 'a'.ljust(5000) }}", "padded"),
        ("{{ ('a' * 100).replace('a', 'bbbbbbbbbbbb') }}", "replaced"),
        ("{{ ('a' * 100)|replace('a', 'bbbbbbbbbbbb') }}", "replaced"),
        ("{{ range(100)|join('x' * 20) }}", "joined"),
        ("{{ ('x' * 20).join(range(100)|map('string')) }}", "joined"),
        ("{{ ('a\n' * 100)|indent('xxxxxxxxxx') }}", "indented"),
        ("{{ ('\t' * 100).expandtabs(50) }}", "expanded tabs"),
    ],
)
def test_what_would_grow_past_the_limits_is_refused_before_it_is_built(template: str, match: str) -> None:
    _refused(template, match)


def test_the_limits_leave_ordinary_templates_alone() -> None:
    out = ConfigRenderer(SMALL).render(
        {
            "a": "{{ 'ab' * 3 }}|{{ 2 ** 10 }}|{{ range(3)|join(',') }}|{{ '%05d' % 42 }}|{{ '{:>4}'.format(7) }}",
            "b": "{% for i in range(3) %}{{ i }}{% endfor %}{{ [1] + [2] }}{{ 'x' ~ 'y' }}",
            "c": "{{ data.user.email|replace('@', ' at ')|center(20)|trim }}",
        },
        CTX,
    )
    assert out == {"a": "ababab|1024|0,1,2|00042|   7", "b": "012[1, 2]xy", "c": "ada at example.com"}


def test_loop_steps_are_counted_across_nested_loops_and_lazy_filters() -> None:
    nested = "{% for i in range(data.n) %}{% for j in range(data.n) %}{% endfor %}{% endfor %}"
    _refused(nested, "loop steps", ctx={"data": {"n": 30}})
    # items drawn from lazy filters are steps too
    _refused("{% for i in range(10) %}{{ range(100)|map('string')|join }}{% endfor %}", "loop steps")
    recursive = "{% for x in data recursive %}{{ loop([1, 2, 3, 4]) }}{% endfor %}"
    _refused(recursive, "loop steps|recursion", ctx={"data": [1]})


def test_the_output_and_what_a_render_builds_are_capped() -> None:
    _refused("{% for i in range(100) %}{{ 'x' * 20 }}{% endfor %}", "output")
    # built in a block, never output: still counted
    _refused("{% set b %}{% for i in range(90) %}{{ 'x' * 999 }}{% endfor %}{% endset %}{{ b|length }}", "block|built")
    # a structure sharing its parts is as long as its text, not its memory: refused before
    # anything prints, serializes or compares it (which would take 2**60 steps)
    _refused(
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
        "assigned value",
    )
    doubled = "{% set a = [1] %}{% set b = [1] %}" + "{% set a = [a, a] %}{% set b = [b, b] %}" * 60
    _refused(doubled + "{{ a == b }}", "assigned value")
    _refused("{{ " + "[" * 60 + "1" + "] * 2" * 60 + " }}", "repetition")
    _refused("{% macro m(a, n) %}{{ m([a, a], n - 1) if n else a|length }}{% endmacro %}{{ m([1], 60) }}", "argument")
    # the whole config's output counts
    with pytest.raises(TemplateRenderError, match="longer than 1000"):
        ConfigRenderer(SMALL).render({"a": "{{ 'x' * 600 }}", "b": ["{{ 'y' * 600 }}"]}, CTX)


def test_a_render_past_its_time_fails() -> None:
    with pytest.raises(TemplateRenderError, match="longer than"):
        ConfigRenderer(SMALL).render({"a": "{% for i in range(50) %}{{ i }}{% endfor %}"}, CTX, seconds=0.0)


@pytest.mark.parametrize(
    ("template", "raised"),
    [
        ("{{ '{0}'.format_map({}) }}", "index out of range"),  # IndexError inside str.format_map
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "recursion"),  # RecursionError
        ("{{ data.amount|explode }}", "MemoryError"),
        ("{{ data.amount|explode('boom') }}", "boom"),
    ],
)
def test_whatever_python_raises_while_rendering_is_a_template_error(template: str, raised: str) -> None:
    r = ConfigRenderer()

    def explode(value: Any, message: str = "") -> None:
        raise MemoryError(message) if not message else LookupError(message)

    r._env.add_filter("explode", explode)
    with pytest.raises(TemplateRenderError, match=raised):
        r.render({"a": template}, CTX)


async def test_a_render_that_outgrows_its_slice_finishes_on_a_thread() -> None:
    r = ConfigRenderer(TemplateLimits(max_steps=1_000_000))
    config = {"a": "{% for i in range(10000) %}{% for j in range(5) %}{{ j }}{% endfor %}{% endfor %}"}
    out = await r.render_async(config, CTX)
    assert out == {"a": "01234" * 10000}
    assert r._pool is not None  # it did not fit in the slice on the loop
    fast = ConfigRenderer()
    fast.check({"a": "{{ data.amount }}"})  # compiled at save: the render fits its slice on the loop
    assert await fast.render_async({"a": "{{ data.amount }}"}, CTX) == {"a": 150}
    assert fast._pool is None
    # not compiled yet (a restart, say): compiled and rendered on a thread
    assert await fast.render_async({"b": "{{ data.amount + 1 }}"}, CTX) == {"b": 151}
    assert fast._pool is not None
    fast.close()
    with pytest.raises(TemplateRenderError, match="loop steps"):
        await ConfigRenderer(TemplateLimits(max_steps=1000)).render_async(config, CTX)
    r.close()


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{{ 9**(9**7) }}", "power"),
        ("{{ 'a' * 10**8 }}", "repetition"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "loop steps"),
        ("{{ range(10**9)|list }}", "range"),
        ("{{ data.name|center(10**9) }}", "centered"),
        ("{{ data.__class__ }}", "unsafe"),
        ("{{ (data.rows|first).__init__ }}", "unsafe"),
    ],
)
def test_save_refuses_constant_blow_ups_and_sandbox_violations_naming_the_field(template: str, match: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ConfigRenderer().check({"channel": template, "other": "{{ data.x }}"}, "handler.config")
    assert err.value.violations[0].field == "handler.config.channel"
    assert err.value.reason == "INVALID_TEMPLATE"
    assert re.search(match, err.value.message)


def test_save_refuses_templates_too_large_or_too_deep_to_compile() -> None:
    r = ConfigRenderer()
    for config, match in [
        ({"a": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"}, "cannot be compiled"),
        ({"a": "{{ data.x }}" * 900, "b": ["{{ data.y }}" * 200]}, "too large"),
        ({"a": "{{ " + "data.x ~ " * 9000 + "1 }}"}, "too large"),
    ]:
        with pytest.raises(InvalidArgument, match=match) as err:
            r.check(config)
        assert err.value.reason == "INVALID_TEMPLATE"
    with pytest.raises(InvalidArgument) as err:
        r.check({"a": "{{ data.x }}" * 900, "b": ["{{ data.y }}" * 200]})
    assert err.value.violations[0].field == "handler.config.b[0]"


def test_save_accepts_what_depends_on_the_data() -> None:
    ConfigRenderer().check(
        {
            "a": "{% for i in range(data.n) %}{% for j in range(data.n) %}{{ i * j }}{% endfor %}{% endfor %}",
            "b": "{{ data.text * data.times }}",
            "c": "{{ data.x ~ data.y }} {{ (data.amount * 2)|round }} {{ data.when|date_format('%Y') }}",
            "d": "{{ '{0}'.format_map(data) }}",
        }
    )


def test_the_limits_are_settings() -> None:
    settings = Settings.load(template_max_range=5, template_max_length=50, template_max_seconds=0.5)
    r = ConfigRenderer.for_settings(settings)
    assert r.limits == TemplateLimits(max_range=5, max_length=50, max_steps=100_000, max_seconds=0.5)
    _refused("{{ range(6)|list }}", "range", limits=r.limits)
    _refused("{{ 'x' * 51 }}", "repetition", limits=r.limits)
    with pytest.raises(ValueError, match="template_max_steps"):
        Settings.load(template_max_steps=0)
