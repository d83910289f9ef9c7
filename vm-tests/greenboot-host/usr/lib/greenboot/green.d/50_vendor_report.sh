#!/bin/bash
# The vendor's green hook (greenboot's /usr/lib tree), mode 644 as greenboot
# ships its scripts: runs after a passed gate. bootgate logs its output, which is
# the trace the scenario looks for.
echo "vendor told: this boot passed its health checks"
