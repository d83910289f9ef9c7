#!/bin/bash
# A wanted vendor check (greenboot's /usr/lib tree): the clock is readable.
set -euo pipefail
date -u +%FT%TZ
