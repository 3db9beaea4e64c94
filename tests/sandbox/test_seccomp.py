"""The shipped seccomp profile stays a valid Docker profile that refuses what it promises to.

What the kernel does with it is tested in tests/security/test_seccomp.py (real containers).
"""

from __future__ import annotations

import json
import re

from engine.sandbox.seccomp import ALLOWED, REMOVED, profile, profile_json

NEVER = {"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
         "process_vm_writev", "userfaultfd", "perf_event_open", "bpf", "keyctl", "add_key", "request_key",
         "kcmp", "name_to_handle_at", "open_by_handle_at", "mount", "umount2", "pivot_root", "unshare",
         "setns", "modify_ldt", "init_module", "kexec_load", "chroot"}


def _allowed_names(rules: list[dict]) -> set[str]:
    return {name for rule in rules if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]}


def test_profile_is_valid_docker_json_that_refuses_by_default() -> None:
    loaded = json.loads(profile_json())
    assert loaded == profile()
    assert loaded["defaultAction"] == "SCMP_ACT_ERRNO" and loaded["defaultErrnoRet"] == 1
    for rule in loaded["syscalls"]:
        assert set(rule) <= {"names", "action", "errnoRet", "args"}
        assert rule["action"] in {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"} and rule["names"]
        assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in rule["names"])
        for arg in rule.get("args", []):
            assert arg["op"] in {"SCMP_CMP_NE", "SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"}


def test_io_uring_debugging_and_kernel_surface_are_never_allowed() -> None:
    allowed = _allowed_names(profile()["syscalls"])
    assert not allowed & NEVER
    assert not set(ALLOWED) & set(REMOVED)
    assert {"read", "write", "mmap", "futex", "clone", "socket", "execve", "getrandom"} <= allowed


def test_namespaces_and_32_bit_abis_stay_closed() -> None:
    rules = profile()["syscalls"]
    clone = next(rule for rule in rules if rule["names"] == ["clone"])
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone["args"][0]["value"] == 0x7E020000
    clone3 = next(rule for rule in rules if rule["names"] == ["clone3"])
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38  # ENOSYS: glibc falls back
    assert all(not arch["subArchitectures"] for arch in profile()["archMap"])
