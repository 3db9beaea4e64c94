"""The sandbox and security suites again, as an unprivileged user on their own rootless engine.

The same tests as the root engine's pass; where a rootless engine on cgroup v1 enforces a limit
differently (rlimits for pids and memory, no ext4 /out, uids in the subuid block), the tests
themselves assert the difference (`engine_info`)."""

from __future__ import annotations

import pytest

from tests.rootless.conftest import User

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_sandbox_and_security_suites_pass_on_a_rootless_engine(users: dict[str, User]) -> None:
    user = next(iter(users.values()))
    probe = user.py("""
        from engine.sandbox.client import connect
        from engine.sandbox.engine import describe
        client = connect()
        print(client.evobox_source, describe(client, client.evobox_source).rootless)
    """)
    assert probe.stdout.split("\n")[-2:] == ["rootless socket True", ""], probe.stdout + probe.stderr  # found by itself
    proc = user.run([user.python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra",
                     "tests/sandbox", "tests/security"], timeout=1800)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"the suites failed as {user.name} on a rootless engine:\n{tail}"
