"""Plugin manifests, signatures, version ranges, registries and the wasm artifact format:
pure functions and local files, no server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from neoactions.plugins import registry, signing, wasmjs
from neoactions.plugins.manifest import parse_manifest, schema_json
from neoactions.plugins.versions import RangeError, parse_range

ROOT = Path(__file__).resolve().parents[2]

MANIFEST: dict[str, Any] = {
    "name": "text-tools",
    "version": "1.2.0",
    "description": "text",
    "neoactions": ">=0.1",
    "handler_types": [{"name": "text.template", "kind": "wasm", "config_schema": {"type": "object"}}],
    "artifact": {"file": "text-tools.wasm", "sha256": "a" * 64},
    "capabilities": {"secrets": ["TOKEN"], "memory_mb": 32},
}


def test_the_published_schema_is_the_one_manifests_are_checked_against() -> None:
    assert (ROOT / "docs" / "plugin-manifest.schema.json").read_text() == schema_json()


def test_a_valid_manifest_parses() -> None:
    m = parse_manifest(MANIFEST)
    assert (m.name, m.version, m.kind, m.type_names()) == ("text-tools", "1.2.0", "wasm", ["text.template"])
    assert m.capabilities.grants_needed() == ["secret:TOKEN"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("name"), "manifest"),
        (lambda d: d.update(version="one"), "manifest.version"),
        (lambda d: d["handler_types"][0].update(kind="telepathy"), "manifest.handler_types[0].kind"),
        (lambda d: d["handler_types"][0].update(name="Bad Name"), "manifest.handler_types[0].name"),
        (lambda d: d["artifact"].update(sha256="xyz"), "manifest.artifact.sha256"),
        (lambda d: d.update(neoactions="banana"), "manifest.neoactions"),
        (lambda d: d["capabilities"].update(network=["api.example.com"]), "manifest.capabilities.network"),
        (lambda d: d["handler_types"][0].update(config_schema={"type": 12}), "manifest.handler_types[0].config_schema"),
        (lambda d: d["handler_types"].append(dict(d["handler_types"][0])), "manifest.handler_types[1].name"),
        (lambda d: d.update(surprise=True), "manifest"),
    ],
)
def test_an_invalid_manifest_is_refused_naming_the_field(change: Any, field: str) -> None:
    doc = copy.deepcopy(MANIFEST)
    change(doc)
    with pytest.raises(InvalidArgument) as refused:
        parse_manifest(doc)
    assert refused.value.reason == "INVALID_PLUGIN_MANIFEST"
    assert refused.value.violations[0].field == field, refused.value.violations


def test_signatures_verify_only_unchanged_manifests_by_trusted_keys(tmp_path: Path) -> None:
    private, public = signing.keygen(tmp_path / "author")
    signed = signing.sign(MANIFEST, signing.load_private(private))
    trusted = signing.TrustedKeys.load([public])
    assert trusted.verify(signed) == signed["signature"]["key_id"]
    tampered = copy.deepcopy(signed)
    tampered["artifact"]["sha256"] = "b" * 64
    with pytest.raises(FailedPrecondition) as bad:
        trusted.verify(tampered)
    assert bad.value.reason == "PLUGIN_BAD_SIGNATURE"
    with pytest.raises(FailedPrecondition) as unsigned:
        trusted.verify(MANIFEST)
    assert unsigned.value.reason == "PLUGIN_UNSIGNED"
    with pytest.raises(FailedPrecondition) as stranger:
        signing.TrustedKeys.load([]).verify(signed)
    assert stranger.value.reason == "PLUGIN_UNTRUSTED_KEY"
    with pytest.raises(FailedPrecondition):
        signing.keygen(tmp_path / "author")  # never overwrites a key


@pytest.mark.parametrize(
    ("wanted", "best"),
    [
        ("", "2.0.0"),
        ("*", "2.0.0"),
        ("^1", "1.9.3"),
        ("^1.2", "1.9.3"),
        ("~1.2", "1.2.5"),
        ("1.2.0", "1.2.0"),
        (">=1.0 <1.5", "1.2.5"),
        ("^0.3", "0.3.1"),
        ("^3", None),
        ("1.x || ^0.3", "1.9.3"),
        ("2.1.0-rc.1", "2.1.0-rc.1"),
    ],
)
def test_ranges_pick_the_newest_allowed(wanted: str, best: str | None) -> None:
    versions = ["0.3.1", "1.2.0", "1.2.5", "1.9.3", "2.0.0", "2.1.0-rc.1"]
    assert parse_range(wanted).best(versions) == best


def test_a_range_that_does_not_parse_is_refused() -> None:
    with pytest.raises(RangeError):
        parse_range("one point two")


def test_the_javascript_artifact_is_the_pinned_runtime_plus_a_custom_section() -> None:
    runtime = b"\x00asm\x01\x00\x00\x00" + bytes(range(200))
    import hashlib

    pin = hashlib.sha256(runtime).hexdigest()
    module = wasmjs.embed(runtime, "function main(i) { return i; } // ünïcode")
    assert wasmjs.unpack(module, pin, len(runtime)) == "function main(i) { return i; } // ünïcode"
    assert wasmjs.unpack(module[:-1], pin, len(runtime)) is None  # truncated
    other = bytearray(module)
    other[20] ^= 1
    assert wasmjs.unpack(bytes(other), pin, len(runtime)) is None  # not the pinned runtime
    assert wasmjs.unpack(runtime, pin, len(runtime)) is None  # no source


def test_registry_search_and_resolve(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    folder.mkdir()
    index = {
        "format": registry.INDEX_FORMAT,
        "plugins": {
            "text-tools": {
                "description": "Text templates",
                "versions": {v: {"manifest": "m", "artifact": "a", "sha256": "0" * 64, "kind": "wasm",
                                 "handler_types": ["text.template"]} for v in ("1.0.0", "1.4.0", "2.0.0")},
            }
        },
    }  # fmt: skip
    (folder / "index.json").write_text(json.dumps(index))
    regs = [registry.Registry(str(folder))]
    (entry,) = registry.search(regs, "TEMPLATE")
    assert (entry.name, entry.latest, entry.versions) == ("text-tools", "2.0.0", ("1.0.0", "1.4.0", "2.0.0"))
    assert registry.search(regs, "nothing like it") == []
    assert registry.resolve(regs, "text-tools", "^1")[1] == "1.4.0"
    with pytest.raises(FailedPrecondition) as unsatisfied:
        registry.resolve(regs, "text-tools", "^3")
    assert unsatisfied.value.reason == "PLUGIN_VERSION_UNSATISFIED" and "1.4.0" in unsatisfied.value.message
    with pytest.raises(NotFound):
        registry.resolve(regs, "missing")
    with pytest.raises(FailedPrecondition):
        regs[0].read("../outside")
