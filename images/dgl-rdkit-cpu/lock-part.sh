#!/bin/sh
# Prints one part of a requirements.lock (entries with their hashes): `torch` is the torch stack
# (torch, triton, nvidia-*: what a different torch source replaces), `rest` is everything else.
# Usage: lock-part.sh torch|rest LOCK
set -eu
case "${1:-}" in torch) want=1 ;; rest) want=0 ;; *) echo "usage: $0 torch|rest LOCK" >&2; exit 2 ;; esac
awk -v want="$want" '
  /^[A-Za-z0-9]/ { stack = ($1 ~ /^(torch|triton|nvidia-[A-Za-z0-9-]+)==/) ? 1 : 0 }
  /^[A-Za-z0-9 ]/ && stack == want' "$2"
