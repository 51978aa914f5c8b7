#!/usr/bin/env bash
# Prints the path of the CA bundle this host trusts (what pip is told to use), which builds get
# as a BuildKit secret so https works inside them without the bundle entering any layer.
set -euo pipefail
for c in "${PIP_CERT:-}" "$(pip config get global.cert 2>/dev/null || true)" \
         "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$c" ] && [ -f "$c" ]; then echo "$c"; exit 0; fi
done
echo "no CA bundle found (set PIP_CERT)" >&2; exit 1
