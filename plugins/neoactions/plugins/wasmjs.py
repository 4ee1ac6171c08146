"""JavaScript wasm plugins: the QuickJS build of the wasm runner with the plugin's source inside.

``plugins build`` turns JavaScript into one WebAssembly module: the exact QuickJS-NG
reactor the ``wasm`` runner runs (its bytes, pinned by digest) followed by a custom
section ``neoactions.javascript`` holding the source. Custom sections are part of the
WebAssembly format and ignored by engines, so the artifact is a valid module, and its
sha256 (signed in the manifest) covers the runtime and the code together. The host
recognises such a module (:func:`unpack`), checks its runtime part against the runner's
pin and runs the source on the runner's own compiled QuickJS. Any other module is a
plain WASI command module (stdin JSON, stdout JSON).
"""

from __future__ import annotations

import hashlib

SECTION = b"neoactions.javascript"


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def custom_section(name: bytes, payload: bytes) -> bytes:
    body = _leb128(len(name)) + name + payload
    return b"\x00" + _leb128(len(body)) + body


def embed(runtime: bytes, source: str) -> bytes:
    """The plugin module: ``runtime`` (QuickJS) with ``source`` in a custom section."""
    return runtime + custom_section(SECTION, source.encode("utf-8"))


def unpack(module: bytes, runtime_sha256: str, runtime_size: int) -> str | None:
    """The JavaScript source of a module :func:`embed` made over the pinned runtime
    (``runtime_sha256`` of its first ``runtime_size`` bytes); ``None`` for any other module."""
    if len(module) <= runtime_size or hashlib.sha256(module[:runtime_size]).hexdigest() != runtime_sha256:
        return None
    try:
        if module[runtime_size] != 0:
            return None
        size, pos = _read_leb128(module, runtime_size + 1)
        if pos + size != len(module):
            return None
        name_len, pos = _read_leb128(module, pos)
        if module[pos : pos + name_len] != SECTION:
            return None
        return module[pos + name_len :].decode("utf-8")
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def quickjs_runtime() -> bytes:
    """The runner's QuickJS build, verified against its pin (needs the server's runners installed)."""
    from neoactions.sandboxes.wasm.runtimes import QUICKJS, load_verified

    return load_verified(QUICKJS)[1]


__all__ = ["SECTION", "custom_section", "embed", "quickjs_runtime", "unpack"]
