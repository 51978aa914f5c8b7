#!/usr/bin/env bash
# Pins an image's requirements.in into requirements.lock (versions and hashes), resolved inside
# the image's own base, so the lock is right for its Python and platform, not the host's.
# Usage: tools/lock.sh IMAGE
set -euo pipefail
image=${1:?usage: tools/lock.sh IMAGE}
DOCKER=${DOCKER:-/usr/bin/docker}
dir=images/$image
[ -f "$dir/requirements.in" ] || { echo "no $dir/requirements.in" >&2; exit 1; }
base=${LOCK_BASE:-sm-images/base:latest}
ca=$(tools/ca-bundle.sh)
echo "==> resolving $dir/requirements.in in $base"
"$DOCKER" run --rm -v "$PWD/$dir:/src" -v "$ca:/run/secrets/ca:ro" -e PIP_CERT=/run/secrets/ca \
  -e EXTRA_APT="${EXTRA_APT:-}" "$base" bash -ec '
    apt-get update -qq >/dev/null && apt-get install -y -qq gcc python3-dev $EXTRA_APT >/dev/null
    pip install -q pip-tools==7.6.2
    cd /tmp && cp /src/requirements.in . && pip-compile -q --generate-hashes --allow-unsafe \
      --strip-extras --no-header -o requirements.lock requirements.in
    cat requirements.lock' > "$dir/requirements.lock.new"
mv "$dir/requirements.lock.new" "$dir/requirements.lock"
echo "==> wrote $dir/requirements.lock ($(grep -c '==' "$dir/requirements.lock") pins)"
