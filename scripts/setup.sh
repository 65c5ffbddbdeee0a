#!/usr/bin/env bash
# Bring a fresh Debian machine to the point where live-tests runs: a Docker engine, the package,
# and a base image to build connector, proxy and fake-API images FROM. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  missing=()
  for cmd_pkg in "$@"; do command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || missing+=("${cmd_pkg##*:}"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# 1. Docker engine (a remote engine via DOCKER_HOST is used as it is).
if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then echo "setup: DOCKER_HOST=$DOCKER_HOST does not answer" >&2; exit 1; fi
  apt_install dockerd:docker.io
  echo "setup: starting dockerd (log: /var/log/dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start, see /var/log/dockerd.log" >&2; exit 1; }
fi

# 2. The package, with its dev tools.
python3 -m pip install -q -e '.[dev]' 2>&1 | grep -v -i -E '^warning|location .* is ignored' || true

# 3. The base image: LIVE_TESTS_BASE_IMAGE (python:3.11-slim by default) where it can be pulled,
#    else a Debian bookworm base made with mmdebstrap.
if ! docker image inspect "${LIVE_TESTS_BASE_IMAGE:-python:3.11-slim}" >/dev/null 2>&1; then
  apt_install mmdebstrap:mmdebstrap
fi
live-tests images base
