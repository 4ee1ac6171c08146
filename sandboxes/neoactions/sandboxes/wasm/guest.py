"""The guest side: how user source is wrapped, started and how it talks back.

Calling convention (both languages): the code defines ``main(input)``, where
``input`` is ``{"config": ..., "data": ..., "context": ...}`` decoded from JSON,
and returns a JSON-serialisable value (JavaScript may also ``export default`` a
function, and may return a promise). Console output becomes log updates.

Wire protocol between the harness and the host, chosen so no host function has
to be linked into the guest (only plain WASI):

* the input travels as the last argv string (argv is copied into the guest by
  WASI itself, so no stdin file is needed);
* fd 1 carries whatever user code prints raw (``print``, ``std.out``); each line
  is an ``info`` log;
* fd 2 carries frames ``\\x1e<tag><payload>\\n`` written by the harness: ``L`` a
  log ``[level, text]``, ``R`` the JSON result, ``E`` an error
  ``{type, message, stack}``. Other fd 2 lines (user writes, the runtime's own
  dumps of errors it could not hand to the harness) are ``error`` logs, and are
  kept to explain a failure that produced no frame.

User code could forge frames, but only about its own execution, which it
controls anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from neoactions.sandboxes.wasm.config import MIB, Limits

FRAME = b"\x1e"

# One line, so that line numbers in user stack traces match the user's source:
# the prelude shares line 1 with the first line of the source.
_JS_PRELUDE = (
    'import * as __neoactions_std from "qjs:std";'
    "const __neoactions = (() => {"
    "const std = __neoactions_std, stringify = JSON.stringify;"
    "const input = JSON.parse(scriptArgs[scriptArgs.length - 1]);"
    'const frame = (tag, text) => { std.err.puts("\\u001e" + tag + text + "\\n"); std.err.flush(); };'
    "const show = (v) => {"
    'if (typeof v === "string") return v;'
    'if (v instanceof Error) return String(v) + (v.stack ? "\\n" + v.stack : "");'
    "try { const s = stringify(v); return s === undefined ? String(v) : s; } catch { return String(v); } };"
    'const text = (args) => args.map(show).join(" ");'
    'const log = (level) => (...args) => frame("L", stringify([level, text(args)]));'
    'globalThis.console = { log: log("info"), info: log("info"), debug: log("debug"),'
    ' trace: log("debug"), warn: log("warning"), error: log("error") };'
    "globalThis.print = globalThis.console.log;"
    "return { input, frame, stringify };"
    "})();"
    "let __neoactions_default;"
)

_JS_EPILOGUE = """
;await (async (h) => {
  try {
    const entry = typeof __neoactions_default === "function" ? __neoactions_default
      : typeof main === "function" ? main : undefined;
    if (entry === undefined) {
      throw new TypeError("the source defines no function main and exports no default function");
    }
    const value = await entry(h.input);
    const text = h.stringify(value === undefined ? null : value);
    if (text === undefined) throw new TypeError("main returned a value that is not JSON");
    h.frame("R", text);
  } catch (e) {
    const error = e instanceof Error
      ? { type: e.name, message: e.message, stack: String(e.stack ?? "") }
      : { type: "Error", message: "uncaught " + String(e), stack: "" };
    h.frame("E", h.stringify(error));
  }
})(__neoactions);
"""

# ``export default <expr>`` at the start of a line becomes an assignment the
# epilogue can see: the code is evaluated as one module, and an anonymous default
# export has no name to reach it by. The replacement stays on the same line.
_EXPORT_DEFAULT = re.compile(r"^([ \t]*)export[ \t]+default[ \t]+", re.MULTILINE)

_PY_HARNESS = r"""
import json, linecache, os, sys, traceback

def _neoactions(source, raw):
    def frame(tag, text):
        data = ("\x1e" + tag + text + "\n").encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(2, data):]

    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    linecache.cache["<action>"] = (len(source), None, source.splitlines(True), "<action>")
    try:
        namespace = {"__name__": "__action__", "__builtins__": __builtins__}
        exec(compile(source, "<action>", "exec"), namespace)
        entry = namespace.get("main")
        if not callable(entry):
            raise TypeError("the source defines no function main(input)")
        text = json.dumps(entry(json.loads(raw)), ensure_ascii=False, allow_nan=False)
        sys.stdout.flush()
        frame("R", text)
    except BaseException as exc:
        sys.stdout.flush()
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "<action>":
            tb = tb.tb_next  # drop the harness's own frames
        stack = "".join(traceback.format_exception(type(exc), exc, tb))
        frame("E", json.dumps({"type": type(exc).__name__, "message": str(exc), "stack": stack}))

_neoactions(sys.argv.pop(1), sys.argv.pop(1))
del _neoactions
"""


def _same(stack: str) -> str:
    return stack


@dataclass(frozen=True, slots=True)
class Invocation:
    """How to start one guest: its argv, and whether fd 1/2 carry the framed protocol."""

    argv: list[str]
    framed: bool
    #: rewrites a guest stack trace in terms of the user's source
    tidy_stack: Callable[[str], str] = _same


_JS_LOCATION = re.compile(r"<cmdline>:(\d+):(\d+)")


def _js_stack_tidier(source: str) -> Callable[[str], str]:
    last_line = source.count("\n") + 1

    def tidy(stack: str) -> str:
        kept = []
        for line in stack.splitlines():
            match = _JS_LOCATION.search(line)
            if match is not None:
                number, column = int(match.group(1)), int(match.group(2))
                if number > last_line:
                    continue  # a frame of the harness epilogue
                if number == 1:
                    column -= len(_JS_PRELUDE)
                line = f"{line[: match.start()]}<action>:{number}:{column}{line[match.end() :]}"
            kept.append(line)
        return "\n".join(kept)

    return tidy


def javascript(source: str, input_json: str, limits: Limits) -> Invocation:
    """QuickJS: the wrapped source evaluated as one ES module (top-level ``await`` works)."""
    module = _JS_PRELUDE + _EXPORT_DEFAULT.sub(r"\1__neoactions_default = ", source) + _JS_EPILOGUE
    # QuickJS's own heap cap sits below the linear-memory cap, so running out of
    # memory is a catchable "out of memory" error, not a trap; the rest leaves
    # room for the C stack, static data and the allocator's slack.
    heap = max(limits.memory_bytes - max(limits.memory_bytes // 4, 4 * MIB), MIB)
    argv = ["qjs", "-m", "--memory-limit", str(heap), "-e", module, input_json]
    return Invocation(argv=argv, framed=True, tidy_stack=_js_stack_tidier(source))


def python(source: str, input_json: str) -> Invocation:
    """CPython: isolated mode (no env, no user site), no ``site`` import (faster start)."""
    return Invocation(argv=["python", "-I", "-S", "-c", _PY_HARNESS, source, input_json], framed=True)


def module() -> Invocation:
    """A raw WASI command module: input on stdin, the JSON result on stdout, logs on stderr."""
    return Invocation(argv=["module"], framed=False)


__all__ = ["FRAME", "Invocation", "javascript", "module", "python"]
