#!/usr/bin/env bash
# Test hosts on this machine for `ec-counter test --hosts` (docs/ssh-hosts.md
# "Nodes on SSH hosts"): each host is a network namespace on a bridge, running Debian's
# openssh-server with a key generated here.
#
#   scripts/lab-hosts.sh up N DIR [USER]  make N hosts; writes DIR/hosts.toml, which
#                                         logs in as USER (default root; another user
#                                         needs passwordless sudo on this machine)
#   scripts/lab-hosts.sh down DIR         stop every sshd and process of those hosts,
#                                         delete their namespaces and bridge, remove DIR
#
# Needs root (namespaces, a bridge, sshd), iproute2, openssh-server and
# nftables. The hosts get 10.98.K.11, .12, ... on bridge ecch-K (K: the first
# free set number), reachable from this machine, with no route anywhere else.
set -euo pipefail

die() { echo "lab-hosts: $*" >&2; exit 1; }

usage() {
  sed -n '5,9p' "$0" | sed 's/^# *//' >&2
  exit 2
}

need() {
  for c in "$@"; do command -v "$c" >/dev/null || die "$c is not installed (apt-get install iproute2 openssh-server nftables)"; done
}

up() {
  local n=$1 dir=$2 user=${3:-root}
  [[ $n =~ ^[0-9]+$ ]] && (( n >= 1 && n <= 200 )) || die "N must be 1-200, got '$n'"
  (( EUID == 0 )) || die "needs root (network namespaces, a bridge, sshd)"
  need ip ssh-keygen nft
  id "$user" >/dev/null 2>&1 || die "no user $user"
  [ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is not installed (apt-get install openssh-server)"
  [ -e "$dir/state" ] && die "$dir already holds hosts; run: $0 down $dir"
  # down removes DIR: never one that holds anything else.
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then die "$dir is not empty: give a new directory"; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local k
  # Claim the first free set number by creating its bridge (atomic: two
  # concurrent ups never share one).
  for k in $(seq 0 256); do
    (( k < 256 )) || die "no free bridge name ecch-0..255"
    ip link add "ecch-$k" type bridge 2>/dev/null && break
  done
  # The state file first: down removes whatever part of this was made.
  printf 'set=%s\nhosts=%s\n' "$k" "$n" >"$dir/state"
  # (The trap runs outside this function: it names the directory itself.)
  trap "[ \$? -eq 0 ] || { echo 'lab-hosts: up failed; removing what was made' >&2; down $(printf %q "$dir") >/dev/null; }" EXIT
  ip addr add "10.98.$k.1/24" dev "ecch-$k"
  ip link set "ecch-$k" up

  ssh-keygen -q -t ed25519 -N '' -C ec-counter-lab-hosts -f "$dir/id_ed25519"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 644 "$dir/authorized_keys" # sshd reads it as the user who logs in
  if [ "$user" != root ] && ! su -s /bin/sh "$user" -c 'test -r "$0"' "$dir/authorized_keys" 2>/dev/null; then
    die "$user cannot read $dir/authorized_keys (a parent directory is closed to it): give a DIR it can reach"
  fi
  mkdir -p /run/sshd # sshd's privilege separation directory
  : >"$dir/known_hosts"
  : >"$dir/hosts.toml.tmp"
  local i ns addr h
  for i in $(seq 1 "$n"); do
    ns="ecch-$k-$i"
    addr="10.98.$k.$((10 + i))"
    h="$dir/host$i"
    mkdir -p "$h/work"
    ip netns add "$ns"
    ip link add "ecch-$k-$i" type veth peer name eth0 netns "$ns"
    ip link set "ecch-$k-$i" master "ecch-$k" up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ssh-keygen -q -t ed25519 -N '' -C "host$i" -f "$h/ssh_host_ed25519_key"
    cat >"$h/sshd_config" <<EOF
ListenAddress $addr
Port 22
HostKey $h/ssh_host_ed25519_key
PidFile $h/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 100
MaxStartups 100
Subsystem sftp internal-sftp
EOF
    # A home of its own (as on a machine of its own): root's shell start-up
    # files on this machine do not slow every SSH command down.
    mkdir -p "$h/home"
    ip netns exec "$ns" unshare -m sh -c 'mount --bind "$1/home" /root && exec /usr/sbin/sshd -f "$1/sshd_config" -E "$1/sshd.log"' sh "$h"
    echo "$addr $(cut -d' ' -f1,2 "$h/ssh_host_ed25519_key.pub")" >>"$dir/known_hosts"
    cat >>"$dir/hosts.toml.tmp" <<EOF
[[host]]
address = "$addr"
user = "$user"
key = "id_ed25519"
known_hosts = "known_hosts"
dir = "$h/work"

EOF
  done
  # Ready when every sshd accepts a connection.
  local deadline=$((SECONDS + 10))
  for i in $(seq 1 "$n"); do
    until (exec 3<>"/dev/tcp/10.98.$k.$((10 + i))/22") 2>/dev/null; do
      (( SECONDS < deadline )) || die "sshd of host$i does not answer; see $dir/host$i/sshd.log"
      sleep 0.05
    done
  done
  mv "$dir/hosts.toml.tmp" "$dir/hosts.toml"
  if [ -n "${SUDO_USER:-}" ]; then
    # The harness that uses the hosts needs no root: give its user the key.
    chown "$SUDO_USER" "$dir" "$dir/id_ed25519" "$dir/id_ed25519.pub" "$dir/known_hosts" "$dir/hosts.toml"
  fi
  trap - EXIT
  echo "$n hosts up: 10.98.$k.11-$((10 + n)); $dir/hosts.toml"
}

down() {
  local dir=$1
  [ -e "$dir/state" ] || die "$dir holds no hosts (no $dir/state)"
  local k n
  k=$(sed -n 's/^set=//p' "$dir/state")
  n=$(sed -n 's/^hosts=//p' "$dir/state")
  [[ $k =~ ^[0-9]+$ && $n =~ ^[0-9]+$ ]] || die "$dir/state is damaged"
  local i ns
  for i in $(seq 1 "$n"); do
    ns="ecch-$k-$i"
    # The link first, at once: a namespace is torn down asynchronously, and
    # its end of the link with it, which would collide with the next set
    # that takes this number.
    ip link delete "ecch-$k-$i" 2>/dev/null || true
    if [ -e "/run/netns/$ns" ]; then
      # Every process in the namespace: sshd, and whatever it started.
      ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
      ip netns delete "$ns"
    fi
  done
  ip link show "ecch-$k" >/dev/null 2>&1 && ip link delete "ecch-$k"
  rm -rf "$dir"
  echo "hosts of $dir removed"
}

case "${1:-}" in
  up) [ $# -eq 3 ] || [ $# -eq 4 ] || usage; up "$2" "$3" "${4:-root}" ;;
  down) [ $# -eq 2 ] || usage; down "$2" ;;
  *) usage ;;
esac
