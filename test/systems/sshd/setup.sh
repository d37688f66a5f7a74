#!/bin/bash
# Start an OpenSSH server on 127.0.0.1 for the tests that reach a "login
# node" through ssh (the director's batch drivers): key-only, root allowed
# by key, its own host key, client key and known_hosts made here, in a
# directory of our own. Idempotent: a second run with the same port reuses a
# running sshd. Installs openssh-server when missing and fails with the
# reason when it cannot. Usage: setup.sh PORT. Prints SSHD_PORT=, SSH_KEY=
# (the client's private key), SSH_KNOWN_HOSTS= and SSHD_PIDFILE=. Stop with
# teardown.sh (by its pid file). VMPILOT_SSHD_LISTEN sets the address
# (default 127.0.0.1) and VMPILOT_SSHD_NETNS a network namespace to start it
# in (the reverse-tunnel test's "login node"); VMPILOT_SSHD_DIR its directory.
set -euo pipefail
port=${1:?usage: setup.sh PORT}
dir=${VMPILOT_SSHD_DIR:-/tmp/vmpilot-sshd}
listen=${VMPILOT_SSHD_LISTEN:-127.0.0.1}
netns=${VMPILOT_SSHD_NETNS:-}
in_ns() { if [ -n "$netns" ]; then ip netns exec "$netns" "$@"; else "$@"; fi; }
fail() { echo "sshd setup: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (installs packages, starts sshd)"
. "$(dirname "$0")/../lib.sh"
apt_install openssh-server openssh-client

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C vmpilot-test-host -f "$dir/host_ed25519"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C vmpilot-test-client -f "$dir/id_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
echo "[$listen]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
cat > "$dir/sshd_config.new" <<CONF
Port $port
ListenAddress $listen
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
MaxStartups 50
MaxSessions 50
LogLevel ERROR
CONF
if ! cmp -s "$dir/sshd_config.new" "$dir/sshd_config" || ! alive "$dir/sshd.pid"; then
  if alive "$dir/sshd.pid"; then stop_by_pidfiles 50 "$dir/sshd.pid"; fi
  mv "$dir/sshd_config.new" "$dir/sshd_config"
  in_ns /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" || fail "sshd did not start: $(tail -3 "$dir/sshd.log" 2>/dev/null)"
else
  rm -f "$dir/sshd_config.new"
fi
for _ in $(seq 100); do
  ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$dir/known_hosts" -i "$dir/id_ed25519" -o IdentitiesOnly=yes \
    -p "$port" -l root "$listen" true 2>/dev/null && break
  sleep 0.1
done
ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$dir/known_hosts" -i "$dir/id_ed25519" -o IdentitiesOnly=yes \
  -p "$port" -l root "$listen" true || fail "cannot log in through the test sshd on port $port; see $dir/sshd.log"
echo "SSHD_PORT=$port"
echo "SSH_KEY=$dir/id_ed25519"
echo "SSH_KNOWN_HOSTS=$dir/known_hosts"
echo "SSHD_PIDFILE=$dir/sshd.pid"
