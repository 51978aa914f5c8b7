#!/usr/bin/env bash
# Makes the test tool environments from their lock files (once; again only when a lock changes):
#   .venv       pytest, docker-py, pytest-testinfra, sagemaker-training, ruff, hadolint, and this repository's
#               packages, editable: smimages (its tooling and test kit), the images' entrypoint and sm_pytorch
#   .venv-sdk2  SageMaker Python SDK 2.x      .venv-sdk3  SageMaker Python SDK 3.x
# The two SDKs cannot share one environment; smimages/testing/sdk.py runs each job under its own.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

make_env() {  # make_env DIR LOCK
  local dir=$1 lock=$2 stamp
  stamp=$(sha256sum "$lock" | cut -c1-16)
  if [ -f "$dir/.lock-stamp" ] && [ "$(cat "$dir/.lock-stamp")" = "$stamp" ]; then
    echo "==> $dir is up to date"; return 0
  fi
  echo "==> making $dir from $lock"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$dir/bin/pip" install -q --no-deps -r "$lock" 2>&1 | grep -v '^WARNING: Location' || true
  "$dir/bin/pip" check >/dev/null || { "$dir/bin/pip" check; echo "$dir: broken requirements" >&2; exit 1; }
  echo "$stamp" > "$dir/.lock-stamp"
}

if ! command -v docker-registry >/dev/null; then  # a real registry for the publishing tests
  echo "==> installing docker-registry from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi
make_env .venv tests/requirements/host.lock
# This repository's packages, editable: code changes need no reinstall, only their metadata does.
packages=(. entrypoints images/pytorch-horovod)
stamp=$(cat "${packages[@]/%//pyproject.toml}" .venv/.lock-stamp | sha256sum | cut -c1-16)
if [ "$(cat .venv/.packages-stamp 2>/dev/null)" != "$stamp" ]; then
  for package in "${packages[@]}"; do
    .venv/bin/pip install -q --no-deps -e "$package" >/dev/null 2>&1 || .venv/bin/pip install --no-deps -e "$package"
  done
  echo "$stamp" > .venv/.packages-stamp
fi
make_env .venv-sdk2 tests/requirements/sdk2.lock
make_env .venv-sdk3 tests/requirements/sdk3.lock
