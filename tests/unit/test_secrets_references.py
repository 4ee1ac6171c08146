"""Secret references found statically, credentials that must be references, and masking."""

from __future__ import annotations

import json
import logging

import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.server.logjson import JsonLogFormatter
from neoactions.server.secrets import Masker, check_sensitive, is_reference_only, referenced_secrets, secret_names
from neoactions.server.secrets.masking import LOG_VALUES, RecentValues

HTTP_SENSITIVE = frozenset({"auth.token", "auth.password", "headers.Authorization", "webhook.secrets"})


def test_references_are_found_per_field() -> None:
    config = {
        "url": "https://example.com/{{ data.id }}",
        "headers": {"Authorization": "Bearer {{ secrets.api_token }}", "X-Other": "{{ secrets['other_one'] }}"},
        "body": ["{% if data.x %}{{ secrets.a ~ secrets.b }}{% endif %}"],
        "source": "{{ secrets.not_rendered }}",
    }
    found = referenced_secrets(config, "handler.config", frozenset({"source"}))
    assert found == {
        "handler.config.headers.Authorization": {"api_token"},
        "handler.config.headers.X-Other": {"other_one"},
        "handler.config.body[0]": {"a", "b"},
    }
    assert secret_names(config, frozenset({"source"})) == {"api_token", "other_one", "a", "b"}
    assert secret_names({"url": "{{ data.secrets }}", "n": 3}) == frozenset()


@pytest.mark.parametrize(
    "template",
    [
        "{{ secrets }}",
        "{{ secrets[data.name] }}",
        "{% for k in secrets %}{{ k }}{% endfor %}",
        "{% set secrets = data %}{{ secrets.x }}",
        "{{ secrets['has-dash'] }}",
    ],
)
def test_uses_of_secrets_that_name_no_secret_are_refused_naming_the_field(template: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        referenced_secrets({"headers": {"X": template}})
    assert refused.value.violations[0].field == "handler.config.headers.X"
    assert refused.value.reason == "INVALID_SECRET_REFERENCE"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("{{ secrets.token }}", True),
        ("Bearer {{ secrets.token }}", True),
        ("{{secrets['a']}}{{ secrets.b }}", True),
        ("", True),
        ("Bearer sk_live_123", False),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", False),
        ("sk_{{ secrets.token }}", False),
        ("{{ secrets.token | upper }}", False),
        ("{{ data.token }}", False),
    ],
)
def test_a_credential_field_holds_references_only(text: str, ok: bool) -> None:
    assert is_reference_only(text) is ok


def test_literal_credentials_are_refused_naming_the_field() -> None:
    good = {
        "auth": {"type": "bearer", "token": "{{ secrets.t }}"},
        "headers": {"authorization": "Basic {{ secrets.basic }}", "X-Trace": "literal is fine here"},
        "webhook": {"secrets": ["{{ secrets.new }}", "{{ secrets.old }}"]},
    }
    check_sensitive(good, HTTP_SENSITIVE)
    for config, field in [
        ({"auth": {"type": "bearer", "token": "abc"}}, "handler.config.auth.token"),
        ({"headers": {"Authorization": "Bearer abc"}}, "handler.config.headers.Authorization"),
        ({"webhook": {"secrets": "whsec_x"}}, "handler.config.webhook.secrets"),
        ({"webhook": {"secrets": ["{{ secrets.a }}", "whsec_x"]}}, "handler.config.webhook.secrets[1]"),
    ]:
        with pytest.raises(InvalidArgument) as refused:
            check_sensitive(config, HTTP_SENSITIVE)
        assert refused.value.violations[0].field == field
        assert refused.value.reason == "SECRET_REFERENCE_REQUIRED"


def test_masking_recurses_and_masks_short_and_json_escaped_values() -> None:
    masker = Masker(["s3cr3t-value", 'quo"te', "ab", ""])
    output = {
        "echo": "token=s3cr3t-value!",
        "nested": [{"s3cr3t-value": 'x quo"te y'}, 7, None],
        "json": '{"v": "quo\\"te"}',
        "short": "xaby",
    }
    assert masker.json(output) == {
        "echo": "token=***!",
        "nested": [{"***": "x *** y"}, 7, None],
        "json": '{"v": "***"}',
        "short": "x***y",
    }
    assert not Masker([]) and Masker([]).json(output) is output
    # as a URL or a form body carries it
    assert Masker(["a b/c&d"]).text("GET /x?k=a%20b%2Fc%26d and k=a+b%2Fc%26d") == "GET /x?k=*** and k=***"


def test_recent_values_mask_log_text() -> None:
    recent = RecentValues(keep_seconds=60, limit=2)
    recent.remember(["one-secret", "two-secret"])
    assert recent.mask("a one-secret and two-secret") == "a *** and ***"
    recent.remember(["three-secret"])  # the oldest is forgotten past the limit
    assert recent.mask("one-secret three-secret") == "one-secret ***"


def test_log_lines_mask_values_attempts_used() -> None:
    LOG_VALUES.remember(["pw-for-the-log-test"])
    try:
        raise RuntimeError("login failed for pw-for-the-log-test")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s", ("pw-for-the-log-test",), None)
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "sent ***"
    assert "pw-for-the-log-test" not in line["exception"] and "login failed for ***" in line["exception"]


def test_a_handler_types_check_refuses_literals_in_its_credential_fields() -> None:
    from neoactions.sandboxes.aws_lambda import register as register_lambda
    from neoactions.sandboxes.email import register as register_email
    from neoactions.sandboxes.http import register as register_http
    from neoactions.server.runners import HandlerRegistry

    registry = HandlerRegistry()
    for register in (register_http, register_email, register_lambda):
        register(registry)
    email = {"host": "smtp.test", "from": "a@b.c", "to": "d@e.f", "subject": "s", "text": "t", "username": "u"}
    creds = {"access_key_id": "{{ secrets.aws_id }}", "secret_access_key": "{{ secrets.aws_key }}"}
    registry.get("email").check_config(dict(email, password="{{ secrets.smtp_password }}"))
    registry.get("lambda").check_config({"function_name": "f", "credentials": creds})
    for handler_type, config, field in [
        ("email", dict(email, password="hunter2"), "handler.config.password"),
        (
            "lambda",
            {"function_name": "f", "credentials": dict(creds, secret_access_key="wJalr")},
            "handler.config.credentials.secret_access_key",
        ),
        (
            "sms",
            {"account_sid": "AC1", "auth_token": "tok", "from": "+1", "to": "+2", "body": "b"},
            "handler.config.auth_token",
        ),
    ]:
        with pytest.raises(InvalidArgument) as refused:
            registry.get(handler_type).check_config(config)
        assert refused.value.violations[0].field == field
