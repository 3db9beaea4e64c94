"""The seccomp profile every candidate container runs under, as a reviewable allowlist.

Why our own: Docker 20.10's default profile allows io_uring, whose rings perform OPENAT, READ,
SOCKET... without seccomp ever seeing those operations, so the profile stops being the list of
what a candidate can ask the kernel. This one is Docker's default allowlist, reduced:
- to what an unprivileged 64-bit process needs: every rule Docker gates on a capability
  (mount, unshare, bpf, perf_event_open, kcmp...) is gone, since candidates have none;
- to the native ABI of x86_64 and aarch64: no i386/x32/arm32 sub-architectures (a syscall
  from another ABI kills the process), so no 32-bit alias (`chown32`, `*_time64`...) is listed;
- minus `REMOVED` below, syscalls Docker allows that candidates never need, each with its reason.
Anything not allowed fails with EPERM, like Docker's, so existing checks keep their meaning.
`profile_json()` is what the runner passes as `security_opt=["seccomp=<json>"]`.
"""

from __future__ import annotations

import functools
import json

# Docker's unconditional allowlist, less REMOVED and 32-bit aliases, grouped by purpose; plus
# arch_prctl (Docker allows it on x86_64 only) and a few newer calls on the caller's own
# resources (fchmodat2, futex_wait/wake/requeue, cachestat, map_shadow_stack) that newer glibc
# tries first. Names the host's libseccomp does not know are skipped by runc.
ALLOWED: tuple[str, ...] = (
    # processes, threads, signals
    "arch_prctl", "capget", "capset", "exit", "exit_group", "execve", "execveat", "fork", "vfork",
    "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getsid", "gettid",
    "get_robust_list", "set_robust_list", "set_tid_address", "kill", "tgkill", "tkill", "membarrier",
    "pidfd_open", "pidfd_send_signal", "prctl", "restart_syscall", "rseq", "seccomp", "setpgid",
    "setpriority", "setsid", "wait4", "waitid", "pause", "process_mrelease",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4",
    # credentials (without capabilities only to the ids already held)
    "getegid", "geteuid", "getgid", "getgroups", "getresgid", "getresuid", "getuid", "setfsgid",
    "setfsuid", "setgid", "setgroups", "setregid", "setresgid", "setresuid", "setreuid", "setuid",
    # scheduling, limits, resource usage
    "getrlimit", "setrlimit", "prlimit64", "getrusage", "ioprio_get", "ioprio_set",
    "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr", "sched_getparam",
    "sched_setparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_setscheduler", "sched_rr_get_interval", "sched_yield", "sysinfo", "times", "uname",
    "getrandom",
    # memory
    "brk", "madvise", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mremap",
    "msync", "munlock", "munlockall", "munmap", "memfd_create", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "map_shadow_stack",
    # futexes and time
    "futex", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "alarm", "clock_getres",
    "clock_gettime", "clock_nanosleep", "gettimeofday", "getitimer", "setitimer", "nanosleep", "time",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
    "timerfd_create", "timerfd_gettime", "timerfd_settime",
    # files and directories
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "chmod", "fchmod", "fchmodat",
    "fchmodat2", "chown", "fchown", "fchownat", "lchown", "close", "close_range", "creat", "open",
    "openat", "openat2", "dup", "dup2", "dup3", "fcntl", "flock", "fadvise64", "fallocate",
    "fdatasync", "fsync", "sync", "syncfs", "sync_file_range", "ftruncate", "truncate",
    "getdents", "getdents64", "link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat",
    "mkdir", "mkdirat", "mknod", "mknodat", "rename", "renameat", "renameat2", "rmdir", "unlink",
    "unlinkat", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "umask",
    "utime", "utimes", "utimensat", "futimesat", "cachestat",
    "getxattr", "fgetxattr", "lgetxattr", "setxattr", "fsetxattr", "lsetxattr", "listxattr",
    "flistxattr", "llistxattr", "removexattr", "fremovexattr", "lremovexattr",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    # reading and writing
    "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev",
    "pwritev2", "lseek", "readahead", "sendfile", "copy_file_range", "splice", "tee", "ioctl",
    "pipe", "pipe2", "eventfd", "eventfd2", "poll", "ppoll", "select", "pselect6",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    # Linux AIO: operations on descriptors already open, all of them visible to seccomp
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    # sockets (no network namespace to reach anything; AF_VSOCK refused below)
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "setsockopt",
    "listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "shutdown",
    "socketpair",
    # System V and POSIX IPC (a private IPC namespace per container)
    "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop", "shmat",
    "shmctl", "shmdt", "shmget", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedsend", "mq_unlink",
    # self-sandboxing
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
)

# Allowed by Docker 20.10's default profile, refused here: what each would give a candidate.
REMOVED: dict[str, str] = {
    "io_uring_setup": "io_uring rings run open/read/socket/... that seccomp never sees",
    "io_uring_enter": "io_uring: see io_uring_setup",
    "io_uring_register": "io_uring: see io_uring_setup",
    "ptrace": "inspecting and rewriting other processes; no candidate debugs",
    "process_vm_readv": "reading another process's memory",
    "process_vm_writev": "writing another process's memory",
    "name_to_handle_at": "half of the open_by_handle_at escape pair; no candidate needs file handles",
    "fanotify_mark": "useless without fanotify_init, which needs CAP_SYS_ADMIN",
    "modify_ldt": "16-bit segment descriptors (Wine, DOSEMU), a history of kernel bugs",
    "get_thread_area": "32-bit TLS descriptors; 64-bit code uses arch_prctl",
    "set_thread_area": "32-bit TLS descriptors; 64-bit code uses arch_prctl",
    "remap_file_pages": "deprecated, emulated by the kernel, used by nothing here",
    "vmsplice": "gifting user pages to pipes, a history of privilege escalations; never needed",
    "adjtimex": "the kernel clock discipline; candidates only read the clock",
    "clock_adjtime": "the kernel clock discipline; candidates only read the clock",
    "memfd_secret": "memory hidden from the kernel itself; never needed",
    "epoll_ctl_old": "never implemented on x86_64",
    "epoll_wait_old": "never implemented on x86_64",
}
# Not in the list above because Docker already refuses them to a process without capabilities
# or outright, and so do we (listed so that a reviewer finds them): userfaultfd, keyctl,
# add_key, request_key, bpf, perf_event_open, kcmp, pidfd_getfd, process_madvise,
# open_by_handle_at, mount, umount2, pivot_root, chroot, unshare, setns, fsopen/fsmount/open_tree,
# kexec_load, init_module, reboot, syslog, acct, swapon, quotactl, lookup_dcookie.

_CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_AF_VSOCK = 40
_PERSONALITY_QUERIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # PER_LINUX(32), UNAME26, query
_ENOSYS = 38
_EPERM = 1


def _rule(names: list[str], *, args: list[dict] | None = None, errno: int | None = None) -> dict:
    rule: dict = {"names": names, "action": "SCMP_ACT_ALLOW" if errno is None else "SCMP_ACT_ERRNO"}
    if errno is not None:
        rule["errnoRet"] = errno
    if args:
        rule["args"] = args
    return rule


def profile() -> dict:
    """The profile in Docker's JSON format."""
    rules = [
        _rule(sorted(ALLOWED)),
        # threads and processes, never new namespaces
        _rule(["clone"], args=[{"index": 0, "value": _CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]),
        # clone3's flags sit in a struct seccomp cannot read: ENOSYS makes glibc fall back to clone
        _rule(["clone3"], errno=_ENOSYS),
        # every socket family but AF_VSOCK, the one that could leave the machine's namespaces
        _rule(["socket"], args=[{"index": 0, "value": _AF_VSOCK, "valueTwo": 0, "op": "SCMP_CMP_NE"}]),
    ]
    rules += [_rule(["personality"], args=[{"index": 0, "value": value, "valueTwo": 0, "op": "SCMP_CMP_EQ"}])
              for value in _PERSONALITY_QUERIES]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": _EPERM,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
        "syscalls": rules,
    }


@functools.cache
def profile_json() -> str:
    """The profile as compact JSON, computed once (it goes into every container's create call)."""
    return json.dumps(profile(), separators=(",", ":"), sort_keys=True)
