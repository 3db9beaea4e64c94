"""The gate's policy: RestrictedPython's transformer, loosened for real code, tightened on escapes.

RestrictedPython's `RestrictingNodeTransformer` visits every node and refuses any node type it
does not know (so a new Python syntax is refused until reviewed), `*` imports, `exec`/`eval`,
frame and code attributes and every name that starts with `_`. Its stock policy is made for
code that then runs under its guards (`_getattr_`, `_getitem_`...); evobox runs the candidate
unchanged in a container instead, so this subclass only *checks*:

- loosened: `__init__`, `self._cache`, `x += 1` on attributes and items, `nonlocal`, async
  defs (the domain's own checks decide), `print` left alone: what legitimate agents and losses use;
- tightened, because nothing guards the code at run time:
  * imports from an allow-list of modules (a module not listed is refused, never guessed);
  * `os` and `sys` only as `os.<name>` / `sys.<name>`, with their process, privilege and
    interpreter-escape attributes refused, so an alias (`import os as o`) changes nothing;
  * no dunder attribute or name outside a small set, no attribute that names a dangerous module
    (`x.os.system`, `np.ctypeslib`) or an exec/spawn/frame primitive, whatever the receiver;
  * `eval`, `exec`, `compile`, `__import__`, `globals`, `locals`, `vars`, `breakpoint`,
    `input`, `help` (its pager runs a subprocess) refused outright, also as values
    (`e = eval`); `getattr`, `setattr`, `delattr`, `hasattr` only called directly with a
    literal, harmless attribute name;
    `open` only with a literal path outside /proc, /sys and /dev;
  * string constants that spell an interpreter escape (`"{0.__class__.__bases__}"`).

The gate is a filter whose one-line reasons teach the meta LLM; the container is the boundary.
"""

from __future__ import annotations

import ast
import re

from RestrictedPython.transformer import RestrictingNodeTransformer

# Whole top-level modules a candidate may import; submodules follow their parent unless denied.
ALLOWED_MODULES = frozenset({
    "__future__", "abc", "array", "bisect", "collections", "concurrent", "contextlib", "copy", "dataclasses",
    "datetime", "decimal", "difflib", "enum", "fractions", "functools", "hashlib", "heapq", "itertools", "json",
    "logging", "math", "numbers", "numpy", "operator", "os", "pprint", "queue", "random", "re", "statistics",
    "string", "sys", "textwrap", "threading", "time", "torch", "typing", "unicodedata", "uuid", "warnings",
})
DENIED_SUBMODULES = frozenset({
    "concurrent.futures.process", "torch.utils.cpp_extension", "torch.multiprocessing", "torch.hub",
    "numpy.ctypeslib", "numpy.f2py", "numpy.distutils", "os.path.os", "logging.config", "logging.handlers",
})
DENIED_IMPORT_NAMES = frozenset({"ProcessPoolExecutor", "cpp_extension", "ctypeslib", "load_library", "load_inline"})

# Modules reachable as attributes of allowed ones (os.sys, posixpath.os, torch.multiprocessing...).
# Names that are also common plain attributes (`.code`, `.types`) are left to the import allow-list.
DANGEROUS_MODULE_NAMES = frozenset({
    "os", "sys", "posix", "nt", "subprocess", "_posixsubprocess", "builtins", "ctypes", "ctypeslib", "_ctypes",
    "importlib", "socket", "_socket", "multiprocessing", "pty", "signal", "marshal", "pickle", "runpy",
    "pdb", "timeit", "codeop", "inspect", "gc", "asyncio", "shutil", "cpp_extension",
})
# Attributes refused on any receiver: process creation, privilege, dynamic loading, frames.
DANGEROUS_ATTRIBUTES = frozenset({
    "system", "popen", "fork", "forkpty", "vfork", "kill", "killpg", "setuid", "setgid", "seteuid", "setegid",
    "setreuid", "setregid", "setresuid", "setresgid", "chroot", "execl", "execle", "execlp", "execlpe", "execv",
    "execve", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
    "spawnvpe", "posix_spawn", "posix_spawnp", "startfile", "fexecve", "_exit", "import_module", "load_module",
    "exec_module", "load_library", "load_inline", "dlopen", "CDLL", "PyDLL", "cdll", "pydll", "ProcessPoolExecutor",
    "_getframe", "_current_frames", "settrace", "setprofile", "meta_path", "path_hooks", "path_importer_cache",
    "get_referrers", "get_referents", "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "gi_frame",
    "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "mro",
    "attrgetter", "methodcaller", "currentframe",
}) | DANGEROUS_MODULE_NAMES | {f"_{name.lstrip('_')}" for name in DANGEROUS_MODULE_NAMES}  # random._os, threading._sys
# `os` and `sys` are allowed for a handful of harmless names only; anything else is refused.
MODULE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "os": frozenset({"path", "environ", "getenv", "cpu_count", "getcwd", "listdir", "makedirs", "mkdir", "remove",
                     "sep", "linesep", "walk", "stat", "scandir", "getpid", "urandom", "devnull", "curdir", "pardir",
                     "extsep", "pathsep", "rename", "replace", "unlink", "rmdir", "fspath", "PathLike", "name"}),
    "sys": frozenset({"stdout", "stderr", "argv", "exit", "maxsize", "float_info", "int_info", "version",
                      "version_info", "getrecursionlimit", "setrecursionlimit", "byteorder", "float_repr_style",
                      "getsizeof", "platform", "hash_info", "maxunicode"}),
}
# Dunders a candidate may read or define; every other dunder attribute or name is refused.
ALLOWED_DUNDERS = frozenset({
    "__init__", "__name__", "__qualname__", "__doc__", "__class__", "__module__", "__file__", "__main__",
    "__post_init__", "__repr__", "__str__", "__len__", "__iter__", "__next__", "__call__", "__eq__", "__ne__",
    "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__contains__", "__getitem__", "__setitem__",
    "__enter__", "__exit__", "__add__", "__sub__", "__mul__", "__truediv__", "__bool__", "__version__",
    "__all__", "__annotations__", "__slots__",
})
FORBIDDEN_BUILTINS = frozenset({
    "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint", "input", "help",
    "__builtins__", "__loader__", "__spec__",
})
ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
PRIVATE_FILES = ("/proc", "/sys", "/dev")
_ESCAPE_IN_STRING = re.compile(r"__(?!(?:%s)__)[A-Za-z]\w*?__" % "|".join(d.strip("_") for d in sorted(ALLOWED_DUNDERS)))


class GatePolicy(RestrictingNodeTransformer):
    """Checks one module; `violations` holds (line, reason) in the order found.

    Checks run on each node *before* the base class transforms its children, so they always see
    the candidate's own code rather than RestrictedPython's rewritten calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[tuple[int | None, str]] = []
        self._module_aliases: dict[str, str] = {}  # bound name -> restricted module (os, sys)
        self._qualified: set[int] = set()  # ids of alias Names seen as `alias.attr`
        self._called: set[int] = set()  # ids of builtin Names seen as the callee of a direct call

    # ---- reporting -------------------------------------------------------------------------
    def error(self, node: ast.AST, info: str) -> None:
        self.violations.append((getattr(node, "lineno", None), info))

    def warn(self, node: ast.AST, info: str) -> None:
        """Warnings (e.g. print collectors) mean nothing when the code is not run transformed."""

    def not_allowed(self, node: ast.AST) -> None:
        self.error(node, f"{type(node).__name__} is not allowed in a candidate")

    # ---- names ---------------------------------------------------------------------------
    def check_name(self, node: ast.AST, name: str | None, allow_magic_methods: bool = False) -> None:
        """Underscore names are fine (`_cache`, `__init__`); escape dunders and builtins are not."""
        if name is None:
            return
        if _is_dunder(name) and name not in ALLOWED_DUNDERS and not allow_magic_methods:
            self.error(node, f"the name {name} (an interpreter internal) is not allowed")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in FORBIDDEN_BUILTINS:
            self.error(node, f"{node.id} is not allowed (write the code directly; no dynamic code or namespaces)")
        elif node.id in ATTRIBUTE_BUILTINS | {"open"} and id(node) not in self._called:
            self.error(node, f"{node.id} may only be called directly, not passed around")
        elif node.id in self._module_aliases and id(node) not in self._qualified and isinstance(node.ctx, ast.Load):
            module = self._module_aliases[node.id]
            self.error(node, f"the module {module} may only be used as {module}.<name>, not passed around")
        self.check_name(node, node.id)
        return self.node_contents_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.check_name(node, node.name, allow_magic_methods=True)
        self.check_function_argument_names(node)
        return self.node_contents_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # the domain's own check decides about async

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.check_name(node, node.name)
        if any(keyword.arg == "metaclass" for keyword in node.keywords):
            self.error(node, "a metaclass is not allowed")
        return self.node_contents_visit(node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> ast.AST:
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        """`x: int = 0` and dataclass fields (unknown to the stock policy, so refused there)."""
        return self.node_contents_visit(node)

    def visit_Await(self, node: ast.Await) -> ast.AST:
        return self.node_contents_visit(node)

    visit_AsyncFor = visit_AsyncWith = visit_Await

    # ---- attributes, calls, constants ------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        reason = self._attribute_reason(node)
        if reason:
            self.error(node, reason)
        return self.node_contents_visit(node)

    def _attribute_reason(self, node: ast.Attribute) -> str | None:
        attr = node.attr
        if isinstance(node.value, ast.Name) and node.value.id in self._module_aliases:
            self._qualified.add(id(node.value))
            module = self._module_aliases[node.value.id]
            if attr not in MODULE_ATTRIBUTES[module]:
                return f"{module}.{attr} is not allowed (no processes, privileges or interpreter internals)"
            return None
        if _is_dunder(attr) and attr not in ALLOWED_DUNDERS:
            return f"access to {attr} (an interpreter escape) is not allowed"
        if attr in DANGEROUS_ATTRIBUTES:
            return f"the attribute {attr} is not allowed (processes, native code, imports or frames)"
        return None

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        """`self.n += 1` and `counts[k] += 1` are ordinary code (the stock policy refuses them)."""
        return self.node_contents_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if isinstance(func, ast.Name):
            reason = self._builtin_call_reason(func.id, node)
            if reason:
                self.error(node, reason)
            if func.id in ATTRIBUTE_BUILTINS | {"open"}:
                self._called.add(id(func))
        return self.node_contents_visit(node)

    def _builtin_call_reason(self, name: str, node: ast.Call) -> str | None:
        if name in ATTRIBUTE_BUILTINS:
            target = node.args[1] if len(node.args) >= 2 else None
            if not (isinstance(target, ast.Constant) and isinstance(target.value, str)):
                return f"{name}() needs a literal attribute name (no string-built attribute access)"
            if (_is_dunder(target.value) and target.value not in ALLOWED_DUNDERS) or target.value in DANGEROUS_ATTRIBUTES:
                return f"{name}(..., {target.value!r}) is not allowed (dunder or dangerous attribute through a string)"
        if name == "open":
            path = node.args[0] if node.args else None
            if not (isinstance(path, ast.Constant) and isinstance(path.value, str)):
                return "open() needs a literal path (candidates read no files but their own)"
            if path.value.startswith(PRIVATE_FILES):
                return f"open({path.value!r}) is not allowed (no /proc, /sys or /dev)"
        return None

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str) and _ESCAPE_IN_STRING.search(node.value):
            found = _ESCAPE_IN_STRING.search(node.value).group(0)  # type: ignore[union-attr]
            self.error(node, f"the string {found!r} (an interpreter escape) is not allowed")
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return self.node_contents_visit(node)

    # ---- imports ---------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> ast.AST:
        for alias in node.names:
            reason = _module_reason(alias.name)
            if reason:
                self.error(node, reason)
            top = alias.name.split(".")[0]
            bound = alias.asname or top
            module = alias.name if alias.asname else top
            if module in MODULE_ATTRIBUTES:
                self._module_aliases[bound] = module
        return self.check_import_names(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        module = node.module or ""
        if node.level:
            self.error(node, "relative imports are not allowed (a candidate is one file)")
        else:
            reason = _module_reason(module)
            if reason:
                self.error(node, reason)
        for alias in node.names:
            if alias.name == "*":
                self.error(node, f"from {module} import * is not allowed (name what you use)")
            elif module in MODULE_ATTRIBUTES and alias.name not in MODULE_ATTRIBUTES[module]:
                self.error(node, f"{module}.{alias.name} is not allowed (no processes, privileges or interpreter internals)")
            elif alias.name in DENIED_IMPORT_NAMES or _module_reason(f"{module}.{alias.name}", submodule_only=True):
                self.error(node, f"importing {alias.name} from {module} is not allowed")
            elif alias.name in FORBIDDEN_BUILTINS or (_is_dunder(alias.name) and alias.name not in ALLOWED_DUNDERS):
                self.error(node, f"importing {alias.name} is not allowed")
        return self.node_contents_visit(node)

    def check_import_names(self, node: ast.Import | ast.ImportFrom) -> ast.AST:
        return self.node_contents_visit(node)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _module_reason(name: str, *, submodule_only: bool = False) -> str | None:
    """Why importing `name` is refused, or None: the top-level module must be allowed and no
    prefix of the dotted path may be a denied submodule."""
    parts = name.split(".")
    if not submodule_only and parts[0] not in ALLOWED_MODULES:
        return (f"import of {name} is not allowed (allowed: {', '.join(sorted(ALLOWED_MODULES - {'__future__'}))}; "
                "no subprocesses, sockets, native calls or dynamic imports)")
    for i in range(2, len(parts) + 1):
        if ".".join(parts[:i]) in DENIED_SUBMODULES:
            return f"import of {name} is not allowed (processes or native code)"
    return None
