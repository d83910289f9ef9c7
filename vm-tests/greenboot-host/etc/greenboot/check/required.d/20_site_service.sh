#!/bin/bash
# The site's own required check (greenboot's /etc tree): the site service is
# configured. The bad update (USR-B in the scenario) ships ready=no.
set -euo pipefail
conf=/etc/site/service.conf
if ! grep -qx 'ready=yes' "$conf" 2>/dev/null; then
  echo "site service not ready: $conf does not say ready=yes" >&2
  exit 1
fi
echo "site service ready"
