#!/usr/bin/env bash
# Makes the root image every Dockerfile starts FROM, straight from Debian's archive:
# no container registry is needed (or reachable) on our build machines.
# Usage: tools/base-image.sh [TAG]   (default: sm-images/debian:bookworm)
set -euo pipefail
SUITE=${SUITE:-bookworm}
TAG=${1:-sm-images/debian:${SUITE}}
DOCKER=${DOCKER:-/usr/bin/docker}

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1 && [ -z "${FORCE:-}" ]; then
  echo "base image $TAG exists (FORCE=1 remakes it)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }

work=$(mktemp -d /var/tmp/rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "==> debootstrap --variant=minbase $SUITE (about 30 s)"
debootstrap --variant=minbase "$SUITE" "$work/rootfs" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2; echo "debootstrap of $SUITE failed (log above)" >&2; exit 1; }

# Trim what a container never needs; keep apt usable for the images built on top.
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
       "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/var/log/*
# Same dpkg excludes as Debian's official slim images keep later layers small too.
cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$work/rootfs/etc/apt/apt.conf.d/90no-recommends"
: >"$work/rootfs/etc/resolv.conf"; : >"$work/rootfs/etc/hostname"

echo "==> importing as $TAG"
tar --numeric-owner -C "$work/rootfs" -c . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $SUITE" - "$TAG"
"$DOCKER" image ls "$TAG"
