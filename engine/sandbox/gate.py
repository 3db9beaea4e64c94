"""Static gate: reject, before any build, candidate code that can never be right.

An AST policy rather than RestrictedPython's compile_restricted, which forbids every name that
starts with an underscore and so rejects ordinary code (`def __init__`, `self._cache`). The gate
is a fast filter whose one-line reason goes back to the LLM; the container stays the boundary,
so the policy only has to catch what no legitimate candidate needs.
"""

from __future__ import annotations

import ast

from engine.sandbox.errors import GateError

__all__ = ["GateError", "check_code"]

FORBIDDEN_MODULES = frozenset({
    "subprocess", "socket", "ctypes", "cffi", "pty", "multiprocessing.popen_fork", "_posixsubprocess",
    "importlib", "imp", "marshal", "pickle", "shelve", "code", "codeop", "signal", "resource",
    "urllib", "http", "ftplib", "smtplib", "telnetlib", "requests", "docker", "asyncio.subprocess",
})
FORBIDDEN_CALLS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint", "globals"})
FORBIDDEN_OS = frozenset({
    "system", "popen", "fork", "forkpty", "kill", "killpg", "setuid", "setgid", "chroot", "putenv",
    "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
    "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
    "posix_spawn", "posix_spawnp", "startfile",
})
ESCAPE_ATTRIBUTES = frozenset({
    "__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__bases__", "__base__",
    "__mro__", "__loader__", "__spec__", "__import__", "__getattribute__", "__reduce__", "__reduce_ex__",
    "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame", "gi_code", "cr_frame", "tb_frame",
    "co_code", "_getframe",
})


def check_code(code: str) -> None:
    """Raise GateError with a one-line reason if `code` breaks the policy; return None if it passes."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise GateError(f"syntax error at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise GateError(f"unparsable code: {exc}") from None
    for node in ast.walk(tree):
        reason = _violation(node)
        if reason:
            raise GateError(f"line {getattr(node, 'lineno', '?')}: {reason}")


def _violation(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        return next((_module_reason(a.name) for a in node.names if _forbidden_module(a.name)), None)
    if isinstance(node, ast.ImportFrom):
        return _import_from_reason(node)
    if isinstance(node, ast.Call):
        return _call_reason(node)
    if isinstance(node, ast.Attribute) and node.attr in ESCAPE_ATTRIBUTES:
        return f"access to {node.attr} (an interpreter escape) is not allowed"
    if isinstance(node, ast.Name) and node.id in ESCAPE_ATTRIBUTES:
        return f"use of {node.id} is not allowed"
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ESCAPE_ATTRIBUTES:
        return f"the string {node.value!r} (an interpreter escape) is not allowed"
    return None


def _forbidden_module(name: str) -> bool:
    parts = name.split(".")
    return any(".".join(parts[: i + 1]) in FORBIDDEN_MODULES for i in range(len(parts)))


def _module_reason(name: str) -> str:
    return f"import of {name} is not allowed (no subprocesses, sockets, native calls or dynamic imports in a candidate)"


def _import_from_reason(node: ast.ImportFrom) -> str | None:
    module = node.module or ""
    if node.level == 0 and _forbidden_module(module):
        return _module_reason(module)
    for alias in node.names:
        if module == "os" and alias.name in FORBIDDEN_OS:
            return f"os.{alias.name} is not allowed (no processes or privilege changes in a candidate)"
        if module == "builtins" and alias.name in FORBIDDEN_CALLS:
            return f"{alias.name} is not allowed"
        if node.level == 0 and _forbidden_module(f"{module}.{alias.name}"):
            return _module_reason(f"{module}.{alias.name}")
    return None


def _call_reason(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
        return f"{func.id}() is not allowed (write the code directly instead of evaluating strings)"
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if func.value.id == "os" and func.attr in FORBIDDEN_OS:
            return f"os.{func.attr}() is not allowed (no processes or privilege changes in a candidate)"
        if func.value.id == "builtins" and func.attr in FORBIDDEN_CALLS:
            return f"builtins.{func.attr}() is not allowed"
    if isinstance(func, ast.Name) and func.id in {"getattr", "setattr", "delattr"} and len(node.args) >= 2:
        name = node.args[1]
        if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.startswith("__"):
            return f"{func.id}(..., {name.value!r}) is not allowed (dunder access through strings)"
    return None
