#!/bin/bash
# A vendor check shipped in the image (greenboot's /usr/lib tree), mode 644 as
# greenboot's own scripts are: greenboot runs every *.sh through bash.
# The shared state partition must be mounted.
set -euo pipefail
findmnt -n /var >/dev/null || { echo "/var is not mounted" >&2; exit 1; }
echo "/var is mounted"
