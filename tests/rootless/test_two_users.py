"""Two users, each with a rootless engine of their own, cannot reach each other.

- engines: neither can talk to the other's engine (its socket is in a 0700 dir of its owner), so
  neither can list, stop or remove the other's containers or images; a container's processes
  run as its owner's subuids, which the other user cannot signal;
- run directories (transcripts, the gateway socket, results) are 0700, their owner's alone;
- the shared GPU lease dir of `make shared-host` (root's, 0755, lock files 0666): leases are
  respected across users, and a user can neither free another's lease nor steal it by replacing
  the lock file, which a world-writable /tmp-style lock dir allows (shown here, as the reason).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.rootless.conftest import User

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PROBE_SOCKET = """
    import json, sys
    from engine.sandbox.client import connect
    client = connect()
    print(json.dumps({"url": str(client.api.base_url), "socket": client.api.get_adapter(client.api.base_url).socket_path}))
"""


def _json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pair(users: dict[str, User]) -> tuple[User, User]:
    a, b = users.values()
    return a, b


@pytest.fixture(scope="module")
def a_container(pair: tuple[User, User]) -> dict:
    """A's container (sleeping, labelled by A's sandbox conventions) and a candidate image of A's."""
    a, _ = pair
    started = _json(a.py("""
        import json, uuid
        from engine.sandbox.client import connect
        from engine.sandbox.images import ImageBuilder
        client = connect()
        builder = ImageBuilder(client)
        image = builder.layer(builder.base(), {"marker.txt": uuid.uuid4().hex.encode()}, kind="two-users")
        box = client.containers.run(image, ["python3", "-c", "import time; time.sleep(300)"], detach=True,
                                    network_mode="none", user="10000:10000", labels={"evobox.run": "two-users-a"})
        box.reload()
        print(json.dumps({"id": box.id, "image": image, "pid": box.attrs["State"]["Pid"]}))
    """, timeout=600))
    yield started
    a.py(f"""
        from engine.sandbox.client import connect
        client = connect()
        client.containers.get({started['id']!r}).remove(force=True)
        client.images.remove({started['image']!r}, force=True)
    """)


def test_neither_user_reaches_the_others_engine(pair: tuple[User, User], a_container: dict) -> None:
    a, b = pair
    a_socket, b_socket = _json(a.py(PROBE_SOCKET))["socket"], _json(b.py(PROBE_SOCKET))["socket"]
    assert a_socket != b_socket and str(a.home) in a_socket or str(a.uid) in a_socket
    tried = b.run(["docker", "-H", f"unix://{a_socket}", "ps", "-a"])
    assert tried.returncode != 0 and "permission denied" in tried.stderr.lower(), tried.stderr
    tried = b.run(["docker", "-H", f"unix://{a_socket}", "rm", "-f", a_container["id"]])
    assert tried.returncode != 0 and "permission denied" in tried.stderr.lower(), tried.stderr
    seen = _json(b.py("""
        import json
        from engine.sandbox.client import connect
        client = connect()
        print(json.dumps({"containers": [c.id for c in client.containers.list(all=True)],
                          "images": [t for i in client.images.list() for t in i.tags]}))
    """))
    assert a_container["id"] not in seen["containers"] and a_container["image"] not in seen["images"]


def test_neither_user_signals_the_others_container(pair: tuple[User, User], a_container: dict) -> None:
    a, b = pair
    pid = a_container["pid"]
    owner = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("Uid:")))
    assert owner not in (a.uid, b.uid)  # one of A's subuids
    killed = b.run(["kill", "-KILL", str(pid)])
    assert killed.returncode != 0 and "not permitted" in killed.stderr, killed.stderr
    assert Path(f"/proc/{pid}").exists()


def test_run_directories_are_their_owners_alone(pair: tuple[User, User]) -> None:
    a, b = pair
    made = _json(a.py("""
        import json, os, shutil, socket
        from pathlib import Path
        from engine.search.rundir import exclusive
        run_dir = Path.home() / "runs" / "two-users"
        shutil.rmtree(run_dir, ignore_errors=True)  # an earlier, interrupted test's
        with exclusive(run_dir):
            (run_dir / "candidates").mkdir(exist_ok=True)
            (run_dir / "candidates" / "transcript.jsonl").write_text("secret prompt")
            (run_dir / "gateway").mkdir(exist_ok=True)
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(run_dir / "gateway" / "gateway.sock"))
            os.chmod(run_dir / "gateway" / "gateway.sock", 0o666)  # as the gateway makes it
            print(json.dumps({"run_dir": str(run_dir), "mode": oct(os.stat(run_dir).st_mode & 0o777)}))
    """))
    assert made["mode"] == "0o700"
    run_dir = made["run_dir"]
    for argv in (["ls", run_dir], ["cat", f"{run_dir}/candidates/transcript.jsonl"]):
        tried = b.run(argv)
        assert tried.returncode != 0 and "Permission denied" in tried.stderr, (argv, tried.stderr)
    tried = b.py(f"""
        import socket
        socket.socket(socket.AF_UNIX).connect({run_dir + '/gateway/gateway.sock'!r})
    """)
    assert tried.returncode != 0 and "PermissionError" in tried.stderr, tried.stderr
    a.run(["rm", "-rf", run_dir])


HOLD = """
    import sys, time
    from pathlib import Path
    from engine.sandbox.gpu import GpuLeaser
    lease = GpuLeaser(Path(sys.argv[1]), devices=[0, 1]).lease(1)
    print(lease.indices[0], flush=True)
    time.sleep(120)
"""

ATTACK = """
    import json, os, sys
    from pathlib import Path
    from engine.sandbox.errors import GpuUnavailableError
    from engine.sandbox.gpu import GpuLeaser
    locks = Path(sys.argv[1])
    got = {}
    try:
        got["both"] = GpuLeaser(locks, devices=[0, 1]).lease(2).indices
    except GpuUnavailableError:
        got["both"] = None
    try:  # replace the held lock file with a fresh one, then lease device 0 again
        os.unlink(locks / "gpu0.lock")
        got["unlink"] = "ok"
    except OSError as exc:
        got["unlink"] = exc.strerror
    try:
        lease = GpuLeaser(locks, devices=[0]).lease(1)
        got["stolen"] = list(lease.indices)
    except GpuUnavailableError as exc:
        got["stolen"] = None
    print(json.dumps(got))
"""


def _attack(victim: User, attacker: User, locks: Path) -> dict:
    """`victim` holds GPU 0; `attacker` asks for both GPUs, then tries to take GPU 0 anyway."""
    holder = subprocess.Popen(["runuser", "-u", victim.name, "--", "env", f"PYTHONPATH={victim.checkout}",
                               victim.python, "-c", HOLD.replace("\n    ", "\n"), str(locks)],
                              stdout=subprocess.PIPE, text=True, cwd="/", start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "0"
        run = attacker.run([attacker.python, "-c", ATTACK.replace("\n    ", "\n"), str(locks)])
        return _json(run)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # runuser and the holder it runs
        holder.wait()


def test_gpu_leases_hold_across_users_in_the_shared_lock_dir(pair: tuple[User, User], world_tmp: Path) -> None:
    a, b = pair
    shared = world_tmp / "gpu-locks"  # as make shared-host lays it out
    shared.mkdir(mode=0o755)
    for index in (0, 1):
        (shared / f"gpu{index}.lock").touch(mode=0o666)
        (shared / f"gpu{index}.lock").chmod(0o666)
    got = _attack(a, b, shared)
    assert got == {"both": None, "unlink": "Permission denied", "stolen": None}


def test_a_world_writable_lock_dir_lets_the_lock_files_owner_steal_a_lease(pair: tuple[User, User],
                                                                           world_tmp: Path) -> None:
    """Why the shared dir is root's: in a 1777 dir, the user who once made gpu0.lock can unlink it
    while another user's lease holds it, and lease a fresh file: two runs on one GPU."""
    a, b = pair
    sticky = world_tmp / "gpu-locks"
    sticky.mkdir()
    sticky.chmod(0o1777)
    made = b.py(f"""
        from pathlib import Path
        from engine.sandbox.gpu import GpuLeaser
        GpuLeaser(Path({str(sticky)!r}), devices=[0, 1]).lease(2).release()  # B made both lock files, long ago
    """)
    assert made.returncode == 0, made.stderr
    got = _attack(a, b, sticky)
    assert got == {"both": None, "unlink": "ok", "stolen": [0]}
