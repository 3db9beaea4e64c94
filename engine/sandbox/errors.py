"""Typed errors of the sandbox.

Kept apart from the modules that raise them so a caller can tell "the environment broke"
(`SandboxError` and subclasses: not the candidate's fault, retry or stop the run) from "the
candidate is wrong" (`GateError`, `ResultError`: their reason goes back to the LLM).
"""

from __future__ import annotations


class SandboxError(Exception):
    """Infrastructure failure: docker unreachable, image missing, build broken. Not the candidate's fault."""


class ImageBuildError(SandboxError):
    """An image could not be built; `log_tail` holds the end of the build output."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message if not log_tail else f"{message}\n{log_tail}")
        self.log_tail = log_tail


class GpuUnavailableError(SandboxError):
    """A run asked for more GPUs than exist or are free."""


class UidUnavailableError(SandboxError):
    """Every uid of the configured range is leased, in use or a host account."""


class GateError(Exception):
    """Candidate code that can never be right; `reason` is one line meant for the LLM."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResultError(Exception):
    """A result file the candidate left unusable (missing, a link, a FIFO, oversize, nested too
    deep, not JSON, the wrong shape): the candidate's fault, never the environment's. `reason` is
    one line for the repair prompt; the domain kit (engine.domains.kit) makes it the candidate's
    failure, so that the sandbox needs no type of the search layer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutFileError(OSError):
    """A result file the engine refuses to read (symlink, FIFO, device, missing, oversize): the candidate's fault.

    An OSError, so callers that already treat unreadable files as the candidate's fault catch it.
    """
