#!/usr/bin/env bash
# Installs (if missing) and starts the Docker engine, then waits, bounded, until it answers.
# Also installs what builds and local-mode tests need from Debian: debootstrap, docker-compose.
set -euo pipefail
DOCKER=/usr/bin/docker
WAIT_S=${ENGINE_WAIT_S:-90}
need=()
[ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || need+=(docker.io)
[ -x $DOCKER ] || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if $DOCKER info >/dev/null 2>&1; then
  echo "==> Docker engine answers: $($DOCKER version -f '{{.Server.Version}}')"
  exit 0
fi
echo "==> starting dockerd (log: /var/log/dockerd.log)"
# setsid: the engine outlives this script and the shell that ran it.
setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
for _ in $(seq "$WAIT_S"); do
  if $DOCKER info >/dev/null 2>&1; then
    echo "==> Docker engine answers: $($DOCKER version -f '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
tail -20 /var/log/dockerd.log >&2
echo "dockerd did not answer within ${WAIT_S} s (log above)" >&2
exit 1
