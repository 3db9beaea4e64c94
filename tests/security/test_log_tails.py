"""stdout cannot hide stderr: each stream keeps its own capped tail (issue 9.5)."""

from __future__ import annotations

import pytest

from engine.sandbox.runner import Sandbox
from tests.security.conftest import HOSTILE
from tests.security.test_hostile import hostile

pytestmark = pytest.mark.docker


def test_a_flood_of_short_stdout_lines_keeps_the_last_stderr_line(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, """
        import sys
        sys.stdout.write('y\\n' * 400_000)
        sys.stdout.flush()
        raise RuntimeError('the real reason')
    """)
    assert result.failure_reason() == "exit 1: RuntimeError: the real reason"
    assert len(result.stdout_tail) <= HOSTILE.log_tail_bytes and result.stdout_tail.endswith("y\n")
