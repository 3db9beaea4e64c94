#!/usr/bin/env bash
# `make rootless`: start this user's own rootless Docker engine (no root, no sudo, no docker group).
# Usage: rootless_engine.sh [start|stop|status]. Needs what `make shared-host` installs once:
# rootlesskit, uidmap (newuidmap), docker.io (dockerd) and a subuid/subgid block for this user.
#
# The engine runs in a user namespace (namespace root = you, namespace uids 1..65536 = your subuid
# block) with the host's network namespace (--net=host: no slirp4netns, no /dev/net/tun needed;
# the daemon has no bridge, and evobox gives every container network "none").
set -euo pipefail

action=${1:-start}
export PATH=$PATH:/usr/sbin:/sbin  # dockerd lives in /usr/sbin, outside a user's PATH
if [[ $(id -u) -eq 0 ]]; then
  echo "make rootless is for an unprivileged user (root uses the root engine: make host)" >&2
  exit 1
fi
# The socket's dir, as evobox looks for it (engine/sandbox/engine.py: runtime_dir).
if [[ -n ${XDG_RUNTIME_DIR:-} ]]; then
  runtime=$XDG_RUNTIME_DIR
elif [[ -d /run/user/$(id -u) && -O /run/user/$(id -u) ]]; then
  runtime=/run/user/$(id -u)
else
  runtime=$HOME/.docker/run
fi
mkdir -p "$runtime" && chmod 700 "$runtime"
export XDG_RUNTIME_DIR=$runtime
sock=$runtime/docker.sock
state=$runtime/dockerd-rootless            # rootlesskit's state dir: child_pid, lock
logdir=${XDG_DATA_HOME:-$HOME/.local/share}/evobox
log=$logdir/dockerd-rootless.log
engine_up() { DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1; }
pidfile=$runtime/evobox-rootlesskit.pid
parent_pid() { [[ -f $pidfile ]] && cat "$pidfile"; }

case $action in
  status)
    engine_up && { echo "rootless engine up at unix://$sock"; exit 0; }
    echo "no rootless engine at unix://$sock"; exit 1 ;;
  stop)
    pid=$(parent_pid || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
    echo "rootless engine stopped"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

if engine_up; then
  echo "rootless engine already up at unix://$sock; evobox finds it there (DOCKER_HOST, if set, wins)"
  exit 0
fi
missing=()
for tool in rootlesskit newuidmap newgidmap dockerd docker; do
  command -v $tool >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "missing ${missing[*]}: the administrator runs 'make shared-host' once (as root)" >&2
  exit 1
fi
me=$(id -un)
if ! grep -qE "^($me|$(id -u)):" /etc/subuid || ! grep -qE "^($me|$(id -u)):" /etc/subgid; then
  echo "no subuid/subgid block for $me: the administrator runs 'make shared-host USERS=$me' (as root)" >&2
  exit 1
fi
# A killed engine leaves its state dir behind, and rootlesskit will not reuse one.
rm -rf "$state" "$runtime/docker.pid"
mkdir -p "$logdir"
echo "starting your rootless Docker engine (log: $log) ..."
# The child branch of Docker's dockerd-rootless.sh: drop the host's /run entries that the
# copied-up /run still links to, then run dockerd (rootless mode: ROOTLESSKIT_STATE_DIR is set).
setsid nohup rootlesskit --net=host --copy-up=/etc --copy-up=/run --state-dir="$state" \
  sh -c 'rm -f /run/docker /run/containerd /run/xtables.lock; exec dockerd "$@"' dockerd \
  --bridge=none --iptables=false --ip-masq=false >"$log" 2>&1 </dev/null &
echo $! >"$pidfile"
for _ in $(seq 1 120); do
  if engine_up; then
    echo "rootless engine up at unix://$sock"
    echo "evobox finds it there by itself (DOCKER_HOST, if set, wins); for the docker CLI: export DOCKER_HOST=unix://$sock"
    exit 0
  fi
  sleep 0.5
done
echo "the rootless engine did not come up; see $log" >&2
tail -5 "$log" >&2
exit 1
