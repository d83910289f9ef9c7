#!/bin/bash
# Disabled in greenboot.conf (DISABLED_HEALTHCHECKS): it would fail every boot.
echo "40_disabled_probe.sh ran although greenboot.conf disables it" >&2
exit 1
