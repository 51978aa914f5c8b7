#!/usr/bin/env bash
# Pins an image's requirements.in into requirements.lock (versions and hashes), resolved inside
# the image's own base, so the lock is right for its Python and platform, not the host's.
# Any other requirements-<name>.in beside it (a build stage's, say) is pinned after it into
# requirements-<name>.lock, and may constrain itself with `-c requirements.lock`.
# Usage: tools/lock.sh IMAGE
set -euo pipefail
image=${1:?usage: tools/lock.sh IMAGE}
DOCKER=${DOCKER:-/usr/bin/docker}
dir=images/$image
[ -f "$dir/requirements.in" ] || { echo "no $dir/requirements.in" >&2; exit 1; }
base=${LOCK_BASE:-sm-images/base:latest}
ca=$(tools/ca-bundle.sh)
echo "==> resolving $dir/requirements*.in in $base"
"$DOCKER" run --rm -v "$PWD/$dir:/src" -v "$ca:/run/secrets/ca:ro" -e PIP_CERT=/run/secrets/ca \
  -e EXTRA_APT="${EXTRA_APT:-}" "$base" bash -ec '
    apt-get update -qq >/dev/null && apt-get install -y -qq gcc python3-dev $EXTRA_APT >/dev/null
    pip install -q pip-tools==7.6.2
    mkdir /tmp/lock && cd /tmp/lock && cp /src/requirements*.in .
    for in in requirements.in $(ls requirements-*.in 2>/dev/null); do
      out=${in%.in}.lock
      pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-header -o "$out" "$in"
      cp "$out" "/src/$out.new"
    done'
for new in "$dir"/requirements*.lock.new; do
  mv "$new" "${new%.new}"
  echo "==> wrote ${new%.new} ($(grep -c '==' "${new%.new}") pins)"
done
