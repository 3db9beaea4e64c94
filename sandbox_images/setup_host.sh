#!/usr/bin/env bash
# Host prerequisites for evobox on Debian/Ubuntu: docker.io, mmdebstrap, e2fsprogs/mount, and a running engine.
# Root gets the root dockerd; any other user gets their own rootless engine (rootless_engine.sh,
# after the administrator's `make shared-host`). Either daemon has no bridge network at all, so no
# container can ever get one.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # dockerd and mkfs.ext4 live there, outside a user's PATH

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need_apt+=(mmdebstrap)
# the size-capped /out of every run: tmpfs or a loop-mounted ext4 image (engine/sandbox/outfs.py)
command -v mkfs.ext4 >/dev/null 2>&1 || need_apt+=(e2fsprogs)
command -v mount >/dev/null 2>&1 || need_apt+=(mount)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "evobox needs: ${need_apt[*]} (the administrator runs make shared-host, as root)" >&2
    exit 1
  fi
  echo "installing ${need_apt[*]} ..."
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

if [[ -n ${DOCKER_HOST:-} ]] && docker info >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then  # your own engine, found where evobox looks (engine/sandbox/engine.py)
  exec bash "$(dirname "$0")/rootless_engine.sh" start
fi
if docker info >/dev/null 2>&1; then
  exit 0
fi
# A daemon killed without cleanup (a session that ended, a crash) leaves its pid file behind,
# and a new dockerd refuses to start while it exists.
pidfile=/var/run/docker.pid
if [[ -f $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  rm -f "$pidfile"
fi
echo "starting dockerd (no bridge network) ..."
log=${EVOBOX_DOCKERD_LOG:-/var/log/evobox-dockerd.log}
nohup dockerd --bridge=none --iptables=false --ip-masq=false >"$log" 2>&1 &
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up; see $log" >&2
exit 1
