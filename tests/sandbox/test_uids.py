"""uid leases: no two live leases share a uid, host ids and running uids are skipped, a dead
process's lease returns. Real lock files, real processes, the host's real passwd/group."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.sandbox import uids
from engine.sandbox.errors import UidUnavailableError
from engine.sandbox.limits import DEFAULT_UID_RANGE, SandboxLimits
from engine.sandbox.uids import lease_uid

FIRST = DEFAULT_UID_RANGE[0] + 4242  # a block of the default range no running test leases from


def test_two_live_leases_never_share_a_uid(tmp_path: Path) -> None:
    with lease_uid((FIRST, FIRST + 9), tmp_path) as first, lease_uid((FIRST, FIRST + 9), tmp_path) as second:
        assert first.uid == FIRST and second.uid == FIRST + 1
    with lease_uid((FIRST, FIRST + 9), tmp_path) as again:
        assert again.uid == FIRST  # released in `with`: the lowest is free again


def test_a_lease_held_by_another_process_is_skipped_until_that_process_dies(tmp_path: Path) -> None:
    holder = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from engine.sandbox.uids import lease_uid
        lease = lease_uid(({FIRST}, {FIRST + 9}), Path({str(tmp_path)!r}))
        print(lease.uid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == str(FIRST)
        with lease_uid((FIRST, FIRST + 9), tmp_path) as mine:
            assert mine.uid == FIRST + 1
    finally:
        proc.kill()
        proc.wait()
    with lease_uid((FIRST, FIRST + 9), tmp_path) as reclaimed:
        assert reclaimed.uid == FIRST


def test_uids_and_gids_of_host_accounts_are_never_leased(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    with lease_uid((nobody, nobody + 1), tmp_path) as lease:
        assert lease.uid == nobody + 1
    group_only = next(g.gr_gid for g in grp.getgrall() if not _is_user(g.gr_gid))
    with pytest.raises(UidUnavailableError, match=f"no free uid in {group_only}-{group_only}"):
        lease_uid((group_only, group_only), tmp_path)


def test_subordinate_id_blocks_are_never_leased(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text(f"someone:{FIRST}:3\n")
    monkeypatch.setattr(uids, "SUBID_FILES", (subuid,))
    with lease_uid((FIRST, FIRST + 9), tmp_path) as lease:
        assert lease.uid == FIRST + 3


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another uid needs root")
def test_a_uid_a_live_process_runs_as_is_skipped(tmp_path: Path) -> None:
    """A container can outlive its killed engine (and its flock): its uid stays taken."""
    proc = subprocess.Popen(["sleep", "60"], user=FIRST, group=FIRST)
    try:
        with lease_uid((FIRST, FIRST + 9), tmp_path) as lease:
            assert lease.uid == FIRST + 1
    finally:
        proc.kill()
        proc.wait()


def test_an_exhausted_range_is_a_clear_error(tmp_path: Path) -> None:
    with lease_uid((FIRST, FIRST), tmp_path):
        with pytest.raises(UidUnavailableError, match="widen sandbox.uid_range"):
            lease_uid((FIRST, FIRST), tmp_path)


def test_uid_range_config_refuses_host_ids_and_a_fixed_uid() -> None:
    assert SandboxLimits(uid_range=(200000, 265535)).uid_range == (200000, 265535)
    for bad in ((65534, 70000), (70000, 69999), (0, 10), (2**31, 2**31 + 5)):
        with pytest.raises(ValidationError, match="uid_range"):
            SandboxLimits(uid_range=bad)
    with pytest.raises(ValidationError, match="leased per run"):
        SandboxLimits(uid=65534)
    assert SandboxLimits().uid is None and min(DEFAULT_UID_RANGE) > 65535


def _is_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False
