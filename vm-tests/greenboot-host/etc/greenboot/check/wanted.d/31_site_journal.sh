#!/bin/bash
# A wanted site check (greenboot's /etc tree): journald is listening.
set -euo pipefail
[ -S /run/systemd/journal/socket ] || { echo "no journal socket" >&2; exit 1; }
