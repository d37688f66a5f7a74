#!/bin/bash
# Install every Debian package the test suite needs, once, before any test
# runs (test/global-setup.ts calls it), so that a first-time install on a new
# machine counts against no test's timeout. Every install of the tests goes
# through lib.sh's apt_install and its one lock, so two installs never race
# for dpkg's or debconf's locks. Idempotent and quick when all are installed.
# Not root: installs nothing (the tests that need root say so themselves).
# Usage: packages.sh [PKG...]  (no argument: the whole list below)
set -euo pipefail
fail() { echo "test packages: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || exit 0

if [ $# -gt 0 ]; then
  apt_install "$@"
  exit 0
fi
# Grid Engine's packages ask debconf questions: answer them first (inside the lock).
sge_preseed
apt_install \
  chromium \
  bubblewrap \
  cloud-init \
  slurmctld slurmd slurm-client munge \
  libslurm-perl libslurmdb-perl libswitch-perl \
  gridengine-master gridengine-exec gridengine-client \
  openssh-server openssh-client \
  postgresql haproxy \
  curl wget
