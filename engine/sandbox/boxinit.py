"""PID 1 of every candidate container: the deadline that holds even when the engine is dead.

The engine's own timeout kills a container only while the engine lives; a killed engine used
to leave its containers running with no deadline. So every container starts this script
(bind-mounted read-only at `INIT_PATH`) as `python3 -I -S INIT_PATH DEADLINE_S CMD...`:

- isolated and without site (`-I -S`): nothing the candidate's image or environment holds
  (PYTHONPATH, /opt/evobox) can be imported into it; standard library only, no engine code;
- PID 1 of the container's pid namespace: the kernel drops every signal sent from inside the
  namespace to it unless it has a handler, and it has none (SIGINT, the one Python installs, is
  ignored), so the candidate cannot kill or stop it;
- non-dumpable: the candidate runs as the same uid, and would otherwise be free to ptrace it
  or write its memory through /proc (no Yama on the host);
- spawns CMD with default signal dispositions and an empty signal mask, reaps every orphan,
  exits with CMD's status (128 + signal when CMD was killed, as Docker reports a killed PID 1);
- at the deadline, writes one line to stderr and exits with `DEADLINE_EXIT`, at which the
  kernel kills everything left in the namespace, and the container ends.

The engine sets DEADLINE_S a little past its own timeout, so a live engine still kills first
and reports the timeout as before. Its start-up is on every run's path, so it imports only what
it needs (`_signal`, the C half of `signal`, spares the enum machinery).
"""

from __future__ import annotations

import _signal as signal
import ctypes
import os
import sys
import time

INIT_PATH = "/.evobox-init.py"  # where the container sees this file
DEADLINE_EXIT = 124  # the exit status at the deadline (as timeout(1))
SPAWN_FAILED_EXIT = 127  # CMD could not be started (as a shell's "command not found")
_PR_SET_DUMPABLE = 4
# Dispositions Python sets to SIG_IGN; an ignored signal stays ignored across exec.
_RESET_TO_DEFAULT = (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        _exit(f"prctl(PR_SET_DUMPABLE) failed: {os.strerror(ctypes.get_errno())}", SPAWN_FAILED_EXIT)
    deadline = time.monotonic() + float(argv[1])
    command = argv[2:]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # wait for it with a timeout below
    try:
        child = os.posix_spawnp(command[0], command, os.environ, setsigmask=(), setsigdef=_RESET_TO_DEFAULT)
    except OSError as exc:
        return _exit(f"cannot run {command[0]!r}: {exc.strerror}", SPAWN_FAILED_EXIT)
    while True:
        status = _reap(child)
        if status is not None:
            return _exit("", status)
        left = deadline - time.monotonic()
        if left <= 0:
            return _exit(f"deadline of {argv[1]} s reached, container ended", DEADLINE_EXIT)
        signal.sigtimedwait({signal.SIGCHLD}, left)


def _reap(child: int) -> int | None:
    """Reap every exited process; CMD's exit status once CMD has exited, else None."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # CMD already reaped: cannot happen, as CMD's exit ends the loop
            return SPAWN_FAILED_EXIT
        if pid == 0:
            return None
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def _exit(message: str, code: int) -> None:
    """Exit now (no interpreter teardown), saying why on stderr unless CMD just ended."""
    if message:
        sys.stderr.write(f"evobox-init: {message}\n")
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
