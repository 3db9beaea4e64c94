"""Concurrent candidates run as distinct uids, so per-uid kernel quotas are theirs alone.

A hog candidate takes every inotify instance (fs.inotify.max_user_instances) and all the POSIX
message-queue space (RLIMIT_MSGQUEUE) its uid may have, and holds them; a second candidate
started meanwhile still gets both. Both report the uid they ran as. On a rootless engine the
kernel also charges both to the user who owns the engine's namespace, and what holds is each
candidate's share (engine.share_quotas).
"""

from __future__ import annotations

import grp
import pwd
import threading
import time
from pathlib import Path

import pytest

from engine.sandbox.runner import Mount, RunResult, Sandbox
from engine.sandbox.uids import ROOTLESS_NS_RANGE
from tests.security.conftest import HOSTILE
from tests.security.test_hostile import hostile, report

pytestmark = pytest.mark.docker

QUOTAS = """
    import ctypes, errno, json, os, time
    libc = ctypes.CDLL(None, use_errno=True)
    class MqAttr(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long),
                    ("curmsgs", ctypes.c_long), ("pad", ctypes.c_long * 4)]
    ATTR = MqAttr(0, 10, 8192, 0)
    def grab(make, limit=4096):
        held = []
        for i in range(limit):
            fd = make(i)
            if fd < 0:
                return held, errno.errorcode[ctypes.get_errno()]
            held.append(fd)
        return held, None
    def inotify(i):
        return libc.inotify_init()
    def mqueue(i):
        return libc.mq_open(f"/NAME{i}".encode(), os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(ATTR))
"""

HOG = QUOTAS.replace("NAME", "hog") + """
    watches, watch_error = grab(inotify)
    queues, queue_error = grab(mqueue)
    got = {"uid": os.getuid(), "inotify": len(watches), "inotify_error": watch_error,
           "mqueues": len(queues), "mqueue_error": queue_error}
    open("/sync/ready", "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists("/sync/release") and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps(got))
"""

VICTIM = QUOTAS.replace("NAME", "victim") + """
    watches, watch_error = grab(inotify, limit=1)
    queues, queue_error = grab(mqueue, limit=1)
    print(json.dumps({"uid": os.getuid(), "inotify": watch_error or "ok", "mqueue": queue_error or "ok"}))
"""


def test_a_candidate_exhausting_its_uid_quotas_leaves_a_concurrent_one_its_own(box: Sandbox, base_image: str,
                                                                             tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir(mode=0o777)
    sync.chmod(0o777)  # the hog's uid is leased at run time: let any uid signal through it
    limits = HOSTILE.model_copy(update={"timeout_s": 90})
    results: list[RunResult] = []
    hog = threading.Thread(target=lambda: results.append(
        hostile(box, base_image, HOG, limits=limits, mounts=[Mount(sync, "/sync", read_only=False)])))
    hog.start()
    try:
        while not (sync / "ready").exists():
            assert hog.is_alive(), "the hog ended before taking its quotas"
            time.sleep(0.05)
        victim = report(hostile(box, base_image, VICTIM))
    finally:
        (sync / "release").touch()
        hog.join(timeout=120)
    hogged = report(results[0])
    assert hogged["inotify"] > 0 and hogged["inotify_error"] == "EMFILE", hogged
    assert hogged["mqueues"] > 0 and hogged["mqueue_error"] == "EMFILE", hogged
    assert victim["inotify"] == "ok" and victim["mqueue"] == "ok", victim
    first, last = ROOTLESS_NS_RANGE if box.engine.rootless else HOSTILE.uid_range
    for uid in (hogged["uid"], victim["uid"]):
        assert first <= uid <= last and uid != 65534
        host = box.engine.host_uid(uid)  # rootless: inside the user's subuid block, so no other user's
        assert host is not None and (not box.engine.rootless or host != uid)
        with pytest.raises(KeyError):
            pwd.getpwuid(host)
        with pytest.raises(KeyError):
            grp.getgrgid(host)
    assert hogged["uid"] != victim["uid"]
