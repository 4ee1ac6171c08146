from __future__ import annotations

import pytest

from neoactions.server.errors import InvalidArgument
from neoactions.server.templating import ConfigRenderer, TemplateRenderError

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
