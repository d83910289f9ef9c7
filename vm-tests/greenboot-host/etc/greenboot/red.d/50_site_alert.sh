#!/bin/bash
# The site's red hook (greenboot's /etc tree), mode 644 as greenboot ships its
# scripts: runs after a failed gate, before the reboot. bootgate logs its output,
# which is the trace the scenario looks for.
echo "site alerted: this boot failed its health checks"
