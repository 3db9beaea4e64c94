"""The one reader of everything a candidate's container leaves behind.

Every domain reads its result files through `read_result` (a JSON file checked against a pydantic
model) or `copy_result_file` (an opaque file such as trained weights). One error policy: whatever
a candidate can influence (missing file, symlink, FIFO, directory, oversize, nesting deep enough
to blow json's recursion, NaN/Infinity, wrong types, missing keys) ends as
`ResultError(reason)` with a one-line reason for the repair prompt (the domain kit makes it the
candidate's failure), never as another exception that the loop would take for a broken
environment and stop the run on.

Depth is checked by a scan of the raw bytes before `json.loads` runs, so a file nested 100k deep
never reaches the parser's recursion.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.sandbox.errors import OutFileError, ResultError
from engine.sandbox.runner import read_out_file

MAX_DEPTH = 32  # no result format of ours nests deeper than a handful of levels
_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)  # an escape pair, a quote, or a bracket

Model = TypeVar("Model", bound=BaseModel)


class ResultModel(BaseModel):
    """Base of every result file's model: finite floats only; unknown keys are ignored so that a
    newer container can add fields without failing older engines."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


def json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True when the JSON text nests deeper than `max_depth` (brackets inside strings ignored).

    Linear in the number of quotes, escapes and brackets, and stops at the first level too deep.
    For text that is not valid JSON the answer may be off, but only past the point where
    json.loads stops anyway, so no parse of an accepted file can recurse deeper.
    """
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    depth, in_string = 0, False
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string or len(token) == 2:
            continue
        elif token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} overflows a float")
    return value


def parse_json(data: bytes, *, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Bytes → JSON value, or ResultError with the reason."""
    if json_depth_exceeds(data, max_depth):
        raise ResultError(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_constant=_no_constants, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ResultError(f"{what} is not valid JSON: {_one_line(exc)}") from None


def read_result(out_dir: Path, name: str, model: type[Model], *, max_bytes: int, what: str,
                max_depth: int = MAX_DEPTH) -> Model:
    """The result file `name` under `out_dir`, size- and depth-capped, validated by `model`."""
    label = f"{what}: /out/{name}"
    data = read_bytes(out_dir, name, max_bytes=max_bytes, what=what)
    value = parse_json(data, what=label, max_depth=max_depth)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise ResultError(f"{label} is malformed at {where}: {first['msg']}"[:300]) from None


def read_bytes(out_dir: Path, name: str, *, max_bytes: int, what: str) -> bytes:
    """A result file's raw bytes (regular file, no symlink followed, capped) or ResultError."""
    try:
        return read_out_file(out_dir, name, max_bytes)
    except OutFileError as exc:
        raise ResultError(f"{what}: {_one_line(exc)}") from None
    except OSError as exc:  # the out dir itself missing or replaced: the candidate's doing too
        raise ResultError(f"{what}: /out/{name} unreadable ({exc.strerror or exc})") from None


def list_result_dir(out_dir: Path, name: str, *, max_entries: int, what: str) -> list[str]:
    """Names of the regular files in the result directory `name` (no symlink followed on the
    way, none listed), or ResultError when it is missing, a link, or not a directory."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY
    try:
        fd = os.open(out_dir, flags)
        try:
            for part in PurePosixPath(name).parts:
                next_fd = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = next_fd
            entries = os.listdir(fd)
            if len(entries) > max_entries:
                raise ResultError(f"{what}: /out/{name} holds {len(entries)} entries, "
                                  f"over the cap of {max_entries}")
            return sorted(e for e in entries
                          if stat.S_ISREG(os.stat(e, dir_fd=fd, follow_symlinks=False).st_mode))
        finally:
            os.close(fd)
    except OSError as exc:
        raise ResultError(f"{what}: /out/{name} is not a plain directory "
                          f"({exc.strerror or exc})") from None


def copy_result_file(out_dir: Path, name: str, target: Path, *, max_bytes: int, what: str) -> None:
    """Copy one opaque result file (e.g. weights) out of the container's /out through the same checks."""
    data = read_bytes(out_dir, name, max_bytes=max_bytes, what=what)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
