#!/bin/bash
# Install Debian's cloud-init (for `cloud-init schema --config-file`) when it
# is missing; fail with the reason when it cannot. Starts nothing.
# Prints CLOUD_INIT=<path>.
set -euo pipefail
fail() { echo "cloud-init setup: $*" >&2; exit 1; }
. "$(dirname "$0")/../lib.sh"
apt_install cloud-init
echo "CLOUD_INIT=$(command -v cloud-init)"
