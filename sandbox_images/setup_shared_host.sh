#!/usr/bin/env bash
# `make shared-host`: what the administrator of a shared GPU machine runs once, as root, so that
# every user runs evobox on a rootless engine of their own (`make rootless`), with no root daemon,
# no sudo and no docker group:
# - apt: docker.io (dockerd, docker CLI), rootlesskit, uidmap (newuidmap/newgidmap), mmdebstrap
#   (builds the base image unprivileged, in unshare mode), e2fsprogs;
# - a subuid/subgid block of 65536 ids for each user in USERS (default: every account with a login
#   shell and uid >= 1000 that has none); blocks never overlap, so two users' containers never
#   share a host uid;
# - the machine-wide GPU lease dir, /var/lib/evobox/gpu-locks: root's, mode 0755, one lock file
#   per GPU (root's, mode 0666): any user can flock a device, none can delete or replace a lock
#   file and so steal a lease another user holds.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "make shared-host is the administrator's, run once as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
need=()
for pair in dockerd:docker.io rootlesskit:rootlesskit newuidmap:uidmap mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs /usr/bin/python3.11:python3.11; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  echo "installing ${need[*]} ..."
  apt-get update -q >/dev/null
  apt-get install -y -q "${need[@]}" >/dev/null
fi
# Debian/Ubuntu kernels can switch unprivileged user namespaces off; rootless engines need them.
for knob in /proc/sys/kernel/unprivileged_userns_clone; do
  [[ -f $knob && $(cat "$knob") == 0 ]] && echo 1 >"$knob" && echo "enabled $knob"
done

# subuid/subgid blocks: the next free 65536 after every existing block (and at least 100000).
users=${USERS:-$(getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 && $7 !~ /(nologin|false)$/ {print $1}')}
next_block() {
  awk -F: 'BEGIN {n = 100000} NF == 3 && $2 + $3 > n {n = $2 + $3} END {print n}' /etc/subuid /etc/subgid
}
for user in $users; do
  id "$user" >/dev/null 2>&1 || { echo "no such user: $user" >&2; exit 1; }
  touch /etc/subuid /etc/subgid
  if grep -q "^$user:" /etc/subuid && grep -q "^$user:" /etc/subgid; then
    continue
  fi
  first=$(next_block)
  grep -q "^$user:" /etc/subuid || usermod --add-subuids "$first-$((first + 65535))" "$user"
  grep -q "^$user:" /etc/subgid || usermod --add-subgids "$first-$((first + 65535))" "$user"
  echo "subuid/subgid block $first-$((first + 65535)) for $user"
done

# The shared GPU lease dir: locks every user can take, none can remove.
locks=${EVOBOX_GPU_LOCK_DIR:-/var/lib/evobox/gpu-locks}
install -d -o root -g root -m 0755 "$locks"
count=0
if command -v nvidia-smi >/dev/null 2>&1; then
  count=$(nvidia-smi --query-gpu=index --format=csv,noheader | grep -c . || true)
elif [[ -d /proc/driver/nvidia/gpus ]]; then
  count=$(ls /proc/driver/nvidia/gpus | wc -l)
fi
for ((i = 0; i < count; i++)); do
  [[ -f $locks/gpu$i.lock ]] || install -o root -g root -m 0666 /dev/null "$locks/gpu$i.lock"
done
echo "GPU lease dir $locks: $count device lock(s)"
if ((count)) && command -v nvidia-ctk >/dev/null 2>&1; then
  # rootless engines cannot write device cgroups; the NVIDIA hook must not try (it still mounts
  # only the requested devices).
  nvidia-ctk config --set nvidia-container-cli.no-cgroups --in-place
fi
echo "done: each user now runs 'make rootless' once per boot, then make search-adas / make test"
