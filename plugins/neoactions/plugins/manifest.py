"""The plugin manifest (``neoactions-plugin.yaml``): what a plugin is, provides and asks for.

:data:`MANIFEST_SCHEMA` is the format's JSON Schema (published as
``docs/plugin-manifest.schema.json``); :func:`parse_manifest` checks a document against it
and the rules a schema cannot say, raising ``InvalidArgument`` naming the field
(``manifest.handler_types[0].kind``). The signed bytes of a manifest are its canonical
JSON without ``signature`` (:func:`canonical_bytes`); the artifact's sha256 is inside them,
so a signature covers the artifact too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from neoactions.domain.errors import FieldViolation, InvalidArgument
from neoactions.plugins.versions import RangeError, is_version, parse_range

MANIFEST_FILE = "neoactions-plugin.yaml"
#: kinds of handler type a plugin may provide
KINDS = ("wasm", "container", "python-sidecar")
#: the artifact each kind ships
ARTIFACT_KINDS = {"wasm": "wasm-module", "container": "container-image", "python-sidecar": "python-wheel"}

_NAME = r"^[a-z][a-z0-9_-]{0,62}$"
_TYPE_NAME = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,7}$"
_HOST = r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$"

_SCHEMA_DOC = {"type": "object", "description": "a JSON Schema (draft 2020-12)"}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://neoactions.dev/schemas/plugin-manifest.schema.json",
    "title": "neoactions plugin manifest",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "version", "description", "handler_types", "artifact"],
    "properties": {
        "name": {"type": "string", "pattern": _NAME, "description": "the plugin's name, unique in a registry"},
        "version": {"type": "string", "minLength": 5, "maxLength": 64, "description": "a semantic version"},
        "description": {"type": "string", "minLength": 1, "maxLength": 1000},
        "license": {"type": "string", "maxLength": 100, "description": "an SPDX identifier"},
        "homepage": {"type": "string", "maxLength": 500},
        "neoactions": {
            "type": "string",
            "maxLength": 100,
            "description": "the neoactions versions the plugin supports, as a range (^0.1); default any",
        },
        "handler_types": {
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "kind"],
                "properties": {
                    "name": {"type": "string", "pattern": _TYPE_NAME, "maxLength": 100},
                    "kind": {"enum": list(KINDS)},
                    "mode": {
                        "enum": ["oneshot", "sidecar"],
                        "description": "container kind only: stdin/stdout per run, or a warm Handler server",
                    },
                    "function": {
                        "type": "string",
                        "pattern": r"^[A-Za-z_$][A-Za-z0-9_$]*$",
                        "description": "wasm (JavaScript) kind: the function to call; default main",
                    },
                    "entrypoint": {
                        "type": "string",
                        "pattern": r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
                        "description": "python-sidecar kind: module:attribute of the SDK handler the wheel serves",
                    },
                    "description": {"type": "string", "maxLength": 1000},
                    "config_schema": _SCHEMA_DOC,
                    "input_schema": _SCHEMA_DOC,
                    "output_schema": _SCHEMA_DOC,
                    "examples": {
                        "type": "array",
                        "maxItems": 50,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["input"],
                            "properties": {
                                "description": {"type": "string"},
                                "config": {"type": "object"},
                                "input": {},
                                "output": {"description": "the expected output (checked by plugins test)"},
                            },
                        },
                    },
                },
            },
        },
        "artifact": {
            "type": "object",
            "additionalProperties": False,
            "required": ["file", "sha256"],
            "properties": {
                "file": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$"},
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "kind": {"enum": sorted(set(ARTIFACT_KINDS.values()))},
                "size": {"type": "integer", "minimum": 0},
            },
        },
        "capabilities": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "network": {
                    "type": "array",
                    "maxItems": 64,
                    "uniqueItems": True,
                    "items": {"type": "string", "pattern": _HOST},
                    "description": "host names the handler may reach (none by default)",
                },
                "secrets": {
                    "type": "array",
                    "maxItems": 64,
                    "uniqueItems": True,
                    "items": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"},
                    "description": "secrets the handler's config may render",
                },
                "memory_mb": {"type": "integer", "minimum": 1, "maximum": 8192},
                "cpu": {"type": "number", "exclusiveMinimum": 0, "maximum": 64},
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
            },
        },
        "signature": {
            "type": "object",
            "additionalProperties": False,
            "required": ["algorithm", "key_id", "value"],
            "properties": {
                "algorithm": {"const": "ed25519"},
                "key_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                "value": {"type": "string", "minLength": 1, "maxLength": 200},
            },
        },
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a plugin asks for: network egress hosts, secrets, ceilings."""

    network: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    memory_mb: int | None = None
    cpu: float | None = None
    timeout_seconds: float | None = None

    def grants_needed(self) -> list[str]:
        """The grants an operator must give at install (``net:HOST``, ``secret:NAME``)."""
        return [f"net:{h}" for h in self.network] + [f"secret:{s}" for s in self.secrets]


@dataclass(frozen=True, slots=True)
class HandlerTypeSpec:
    name: str
    kind: str
    mode: str = "oneshot"
    function: str = "main"
    entrypoint: str = ""
    description: str = ""
    config_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    examples: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest; ``document`` is what was parsed (signature included)."""

    name: str
    version: str
    description: str
    handler_types: tuple[HandlerTypeSpec, ...]
    artifact_file: str
    artifact_sha256: str
    capabilities: Capabilities
    license: str = ""
    homepage: str = ""
    neoactions: str = ""
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The runner kind of the plugin (every handler type of one plugin shares its artifact)."""
        return self.handler_types[0].kind

    @property
    def signature(self) -> dict[str, Any] | None:
        sig = self.document.get("signature")
        return dict(sig) if isinstance(sig, dict) else None

    def type_names(self) -> list[str]:
        return [t.name for t in self.handler_types]

    def to_json(self) -> str:
        return json.dumps(self.document, sort_keys=True, ensure_ascii=False)


def _path(prefix: str, parts: Any) -> str:
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _invalid(violations: list[FieldViolation]) -> InvalidArgument:
    first = violations[0]
    return InvalidArgument(
        f"invalid plugin manifest: {first.field}: {first.description}",
        reason="INVALID_PLUGIN_MANIFEST",
        violations=violations,
    )


def parse_manifest(document: Any, prefix: str = "manifest") -> Manifest:
    """Validate ``document`` (a decoded manifest) and return it typed; ``InvalidArgument``
    (INVALID_PLUGIN_MANIFEST) naming every bad field otherwise."""
    if not isinstance(document, Mapping):
        raise _invalid([FieldViolation(prefix, "a manifest is a mapping")])
    doc = json.loads(json.dumps(document))  # plain JSON types only (YAML dates, tuples...)
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    violations = [FieldViolation(_path(prefix, e.absolute_path), e.message) for e in errors]
    if not violations:
        violations = _semantic_violations(doc, prefix)
    if violations:
        raise _invalid(violations)
    caps = doc.get("capabilities") or {}
    types = tuple(
        HandlerTypeSpec(
            name=t["name"],
            kind=t["kind"],
            mode=t.get("mode", "oneshot"),
            function=t.get("function", "main"),
            entrypoint=t.get("entrypoint", ""),
            description=t.get("description", ""),
            config_schema=t.get("config_schema") or {"type": "object"},
            input_schema=t.get("input_schema"),
            output_schema=t.get("output_schema"),
            examples=tuple(t.get("examples") or ()),
        )
        for t in doc["handler_types"]
    )
    return Manifest(
        name=doc["name"],
        version=doc["version"],
        description=doc["description"],
        handler_types=types,
        artifact_file=doc["artifact"]["file"],
        artifact_sha256=doc["artifact"]["sha256"],
        capabilities=Capabilities(
            network=tuple(caps.get("network") or ()),
            secrets=tuple(caps.get("secrets") or ()),
            memory_mb=caps.get("memory_mb"),
            cpu=caps.get("cpu"),
            timeout_seconds=caps.get("timeout_seconds"),
        ),
        license=doc.get("license", ""),
        homepage=doc.get("homepage", ""),
        neoactions=doc.get("neoactions", ""),
        document=doc,
    )


def _semantic_violations(doc: dict[str, Any], prefix: str) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if not is_version(doc["version"]):
        out.append(FieldViolation(f"{prefix}.version", f"{doc['version']!r} is not a semantic version (1.2.3)"))
    if doc.get("neoactions"):
        try:
            parse_range(doc["neoactions"])
        except RangeError as exc:
            out.append(FieldViolation(f"{prefix}.neoactions", str(exc)))
    types = doc["handler_types"]
    kinds = {t["kind"] for t in types}
    if len(kinds) > 1:
        out.append(FieldViolation(f"{prefix}.handler_types", "every handler type of a plugin has the same kind"))
    seen: set[str] = set()
    for i, t in enumerate(types):
        where = f"{prefix}.handler_types[{i}]"
        if t["name"] in seen:
            out.append(FieldViolation(f"{where}.name", f"{t['name']!r} is listed twice"))
        seen.add(t["name"])
        if "mode" in t and t["kind"] != "container":
            out.append(FieldViolation(f"{where}.mode", "only container handler types have a mode"))
        if t["kind"] == "python-sidecar" and not t.get("entrypoint"):
            out.append(FieldViolation(f"{where}.entrypoint", "a python-sidecar handler type names its module:handler"))
        if "entrypoint" in t and t["kind"] != "python-sidecar":
            out.append(FieldViolation(f"{where}.entrypoint", "only python-sidecar handler types have an entrypoint"))
        for key in ("config_schema", "input_schema", "output_schema"):
            if key in t:
                try:
                    jsonschema.validators.validator_for(t[key]).check_schema(t[key])
                except jsonschema.SchemaError as exc:
                    out.append(FieldViolation(f"{where}.{key}", f"not a valid JSON Schema: {exc.message}"))
    kind = types[0]["kind"]
    declared = doc["artifact"].get("kind")
    if declared and declared != ARTIFACT_KINDS[kind]:
        out.append(FieldViolation(f"{prefix}.artifact.kind", f"a {kind} plugin ships a {ARTIFACT_KINDS[kind]}"))
    if kind == "wasm" and (doc.get("capabilities") or {}).get("network"):
        out.append(FieldViolation(f"{prefix}.capabilities.network", "a wasm plugin has no network at all"))
    return out


def read_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file (YAML or JSON) or a plugin directory's manifest."""
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InvalidArgument.field("manifest", f"cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument.field(
            "manifest", f"{path} is not YAML: {exc}", reason="INVALID_PLUGIN_MANIFEST"
        ) from None
    return parse_manifest(document)


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """What a signature signs: the manifest without ``signature``, as canonical JSON."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def schema_json() -> str:
    """The published schema file's text (``docs/plugin-manifest.schema.json``)."""
    return json.dumps(MANIFEST_SCHEMA, indent=2) + "\n"


__all__ = [
    "ARTIFACT_KINDS",
    "KINDS",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "Capabilities",
    "HandlerTypeSpec",
    "Manifest",
    "canonical_bytes",
    "parse_manifest",
    "read_manifest",
    "schema_json",
]
