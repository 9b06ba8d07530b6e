#!/usr/bin/env bash
# Real Debian 12 test hosts on this machine: systemd-nspawn containers booted from a cached debootstrap
# rootfs, on a private bridge with static addresses, reachable over SSH with a per-run key. They stand in
# for the Proxmox VMs (only Proxmox itself is absent); Ansible reaches them exactly as it reaches the VMs.
#
#   e2e/hosts.sh up NAME=IP [NAME=IP ...]   create what is missing and boot the hosts; wait for SSH
#   e2e/hosts.sh remove NAME...             power off and delete some hosts (a destroyed VM); the rest keep running
#   e2e/hosts.sh down                       stop every host, remove everything `up` created, verify it
#   e2e/hosts.sh status                     one line per host
#   e2e/hosts.sh rootfs                     only build (or check) the cached rootfs
#   e2e/hosts.sh ssh NAME [COMMAND...]      SSH into a host as the sudo user
#
# Example: e2e/hosts.sh up k3s-master-1=10.213.57.10 k3s-worker-1=10.213.57.11 k3s-worker-2=10.213.57.12
#
# Needs root on Linux. Environment:
#   K3SPVE_CACHE   cache root (default ~/.cache/k3s-proxmox); the rootfs lives in $K3SPVE_CACHE/rootfs/bookworm
#   E2E_RUN_DIR    run directory: key, hosts.json, ssh_config, per-host layers, logs (default /tmp/k3spve-e2e)
#   E2E_SUBNET     private test subnet, a /24 (default 10.213.57.0/24); the bridge takes .1
#   E2E_BRIDGE     bridge name (default k3spve-br0);  E2E_NFT_TABLE  nftables table (default k3spve_e2e)
#   E2E_DNS        nameservers for the hosts, space-separated (default: this machine's resolv.conf)
#   E2E_BOOT_TIMEOUT  seconds to wait for SSH on every host (default 180)
#   E2E_WRITABLE_PROC_SYS=1  remount /proc/sys read-write in the hosts at boot (/proc/sys/net is always
#                  writable: it belongs to the host's network namespace). Off by default: the other sysctls are
#                  global, so a host writing them (the kubelet sets vm.overcommit_memory, kernel.panic,
#                  kernel.panic_on_oops) changes this machine.
#   E2E_LAYER=copy give each host a full copy of the rootfs instead of an overlay (default: overlay if it works)
#   DEBIAN_MIRROR  Debian mirror URL (default: taken from this machine's apt sources)
#   DEBIAN_SECURITY_MIRROR  security mirror URL for the hosts' apt (default: from apt sources; "none" omits it)
#
# What a host is: overlayfs (upper layer in the run directory) over the read-only cached rootfs, or a
# `cp -a --reflink=auto` copy where overlayfs does not work; /var/lib/rancher is a plain directory of the run
# directory bound in, so containerd's overlayfs snapshotter never stacks overlay on overlay. The container runs
# with all capabilities, no seccomp filter, /dev/kmsg bound and writable cgroup hierarchies, in cgroups of its
# own (below the caller's) in every hierarchy, which K3s needs. Network: a bridge with .1 of the subnet and an
# nftables table that masquerades the subnet and forwards only DNS and HTTP(S) out of it (for apt).
# Root in a host is root on this machine (all capabilities, no user namespace): test hosts, not a sandbox.
# Concurrent runs on one machine: give each its own E2E_RUN_DIR, E2E_SUBNET, E2E_BRIDGE and E2E_NFT_TABLE.
set -euo pipefail

CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
RUN="${E2E_RUN_DIR:-/tmp/k3spve-e2e}"
SUBNET="${E2E_SUBNET:-10.213.57.0/24}"
BRIDGE="${E2E_BRIDGE:-k3spve-br0}"
NFT_TABLE="${E2E_NFT_TABLE:-k3spve_e2e}"
BOOT_TIMEOUT="${E2E_BOOT_TIMEOUT:-180}"
SUITE=bookworm
ROOTFS="$CACHE/rootfs/$SUITE"
GUEST_USER=debian
KEY="$RUN/id_ed25519"
NSPAWN_RUNDIR=/run/systemd/nspawn
RUN_ID="$(printf '%s' "$RUN" | sha256sum | cut -c1-8)"
# Machine-wide state shared by concurrent runs (different E2E_RUN_DIR, E2E_SUBNET, E2E_BRIDGE): the list of
# active runs, and the original net.ipv4.ip_forward, restored when the last run goes down.
SHARED=/run/k3spve-e2e

# The rootfs recipe: the packages on top of debootstrap's minbase. Changing it (or customize_rootfs below)
# changes the stamp hash and the next `up` rebuilds the cache.
PACKAGES=(systemd systemd-sysv dbus libpam-systemd openssh-server python3 sudo iproute2 ca-certificates
          iputils-ping procps kmod less)

log() { printf '[hosts] %s\n' "$*" >&2; }
die() { printf '[hosts] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
T0="$(now)"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# --- preconditions -----------------------------------------------------------------------------------
need_root() {
  [ "$(uname -s)" = Linux ] || die "test hosts need Linux (systemd-nspawn); this is $(uname -s)"
  [ "$(id -u)" = 0 ] || die "test hosts need root (bridge, nftables, mounts, systemd-nspawn): run with sudo"
}

# Subnet: a.b.c.0/24 -> PREFIX=a.b.c, GATEWAY=a.b.c.1
[[ "$SUBNET" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.0/24$ ]] \
  || die "E2E_SUBNET=$SUBNET must be a /24 written a.b.c.0/24"
for o in "${BASH_REMATCH[@]:1:3}"; do [ "$o" -le 255 ] || die "E2E_SUBNET=$SUBNET: octet $o > 255"; done
PREFIX="${SUBNET%.0/24}"
GATEWAY="$PREFIX.1"
[[ "$BRIDGE" =~ ^[a-zA-Z0-9_-]{1,15}$ ]] || die "E2E_BRIDGE=$BRIDGE is not a valid interface name (max 15 chars)"
[[ "$NFT_TABLE" =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]] || die "E2E_NFT_TABLE=$NFT_TABLE is not a valid nftables name"
[[ "$BOOT_TIMEOUT" =~ ^[0-9]+$ ]] || die "E2E_BOOT_TIMEOUT=$BOOT_TIMEOUT is not a number of seconds"
case "$RUN" in /*) ;; *) die "E2E_RUN_DIR=$RUN must be an absolute path" ;; esac
[ "$RUN" != / ] || die "E2E_RUN_DIR must not be /"

# --- host tools --------------------------------------------------------------------------------------
ensure_tools() {
  local want=(debootstrap:debootstrap systemd-nspawn:systemd-container ip:iproute2 nft:nftables
              ssh:openssh-client ssh-keygen:openssh-client setsid:util-linux nsenter:util-linux
              systemd-id128:systemd flock:util-linux) missing=() t
  for t in "${want[@]}"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
  done
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  [ "${#missing[@]}" -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  command -v apt-get >/dev/null 2>&1 || die "missing host packages: ${missing[*]} (and no apt-get to install them)"
  log "installing host packages: ${missing[*]}"
  apt-get update -qq >/dev/null || die "apt-get update failed; check this machine's apt sources"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# --- Debian mirror from this machine's apt sources ---------------------------------------------------
# Prints "URI SUITE" for every enabled `deb` entry, from one-line (*.list) and deb822 (*.sources) files.
apt_entries() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                       if (i + 1 <= NF) print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false|0)$/)
                              for (u in uris) for (s in suites) print uris[u], suites[s]
                            types = ""; enabled = ""; delete uris; delete suites }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key = tolower($1); sub(/:$/, "", key) }
         key == "types"   { types = ""; for (i = 2; i <= NF; i++) types = types " " $i; sub(/^ /, "", types) }
         key == "enabled" { enabled = tolower($2) }
         key == "uris"    { for (i = 2; i <= NF; i++) uris[i] = $i }
         key == "suites"  { for (i = 2; i <= NF; i++) suites[i] = $i }
         END { flush() }' "$f"
  done
}

DEBIAN_SUITES='^(bookworm|trixie|bullseye|buster|forky|sid|stable|testing|unstable|oldstable)$'
mirror_url() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then printf '%s\n' "${DEBIAN_MIRROR%/}"; return; fi
  local m
  m="$(apt_entries | awk -v re="$DEBIAN_SUITES" '$2 ~ re && $1 ~ /^https?:\/\// && $1 !~ /security/ { print $1; exit }')"
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/*}: set DEBIAN_MIRROR=<url of a Debian mirror>"
  printf '%s\n' "${m%/}"
}
security_mirror_url() {
  if [ -n "${DEBIAN_SECURITY_MIRROR:-}" ]; then
    [ "$DEBIAN_SECURITY_MIRROR" = none ] || printf '%s\n' "${DEBIAN_SECURITY_MIRROR%/}"
    return
  fi
  apt_entries | awk '$2 ~ /-security$/ && $1 ~ /^https?:\/\// { sub(/\/$/, "", $1); print $1; exit }'
}

# --- nameservers the hosts use -------------------------------------------------------------------------
nameservers() {
  if [ -n "${E2E_DNS:-}" ]; then
    # shellcheck disable=SC2086  # a space-separated list
    printf '%s\n' $E2E_DNS
    return
  fi
  local ns f
  for f in /etc/resolv.conf /run/systemd/resolve/resolv.conf; do
    [ -f "$f" ] || continue
    ns="$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ { print $2 }' "$f")"
    [ -n "$ns" ] && { printf '%s\n' "$ns"; return; }
  done
  die "no usable IPv4 nameserver in /etc/resolv.conf (a loopback stub cannot serve the hosts): set E2E_DNS='a.b.c.d'"
}

# --- cached rootfs -------------------------------------------------------------------------------------
# Runs inside the fresh debootstrap tree ($1). Everything per host (hostname, keys, addresses, machine-id,
# apt sources, resolv.conf) is written at `up` time into the host's own layer, not here.
customize_rootfs() {
  local r="$1"
  chroot "$r" systemctl enable systemd-networkd.service >/dev/null 2>&1
  chroot "$r" useradd --create-home --shell /bin/bash --groups sudo "$GUEST_USER"
  chroot "$r" usermod --password '*' "$GUEST_USER"    # no password, but not "locked": key login works
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$GUEST_USER" >"$r/etc/sudoers.d/90-$GUEST_USER"
  chmod 0440 "$r/etc/sudoers.d/90-$GUEST_USER"
  install -d -m 0700 "$r/root/.ssh"
  install -d -m 0700 -o "$(chroot "$r" id -u "$GUEST_USER")" -g "$(chroot "$r" id -g "$GUEST_USER")" \
    "$r/home/$GUEST_USER/.ssh"
  printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' \
    >"$r/etc/ssh/sshd_config.d/10-k3spve-e2e.conf"
  printf 'LANG=C.UTF-8\n' >"$r/etc/default/locale"
  # Writable cgroup hierarchies: nspawn mounts the cgroup v1 controllers read-only inside the container
  # (only name=systemd and the unified hierarchy are writable); a VM has them writable and the kubelet
  # creates its pod cgroups there. This early unit remounts them read-write before anything else starts.
  cat >"$r/usr/local/sbin/k3spve-cgroup-rw" <<'EOF'
#!/bin/sh
# Test host only (k3s-proxmox e2e): make the cgroup hierarchies nspawn mounted read-only writable.
set -e
awk '$2 == "/sys/fs/cgroup" || $2 ~ "^/sys/fs/cgroup/" { print $2 }' /proc/self/mounts | while read -r m; do
  mount -o remount,rw,bind "$m" 2>/dev/null || mount -o remount,rw "$m"
done
EOF
  chmod 0755 "$r/usr/local/sbin/k3spve-cgroup-rw"
  cat >"$r/etc/systemd/system/k3spve-cgroup-rw.service" <<'EOF'
[Unit]
Description=Make cgroup hierarchies writable (k3s-proxmox e2e test host)
DefaultDependencies=no
ConditionVirtualization=container
Before=sysinit.target
After=systemd-remount-fs.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/k3spve-cgroup-rw

[Install]
WantedBy=sysinit.target
EOF
  chroot "$r" systemctl enable k3spve-cgroup-rw.service >/dev/null 2>&1
  # /dev/kmsg is bound in from the runner by nspawn (--bind=/dev/kmsg); the kubelet reads it.
  # Per-host state must not come from the cache:
  : >"$r/etc/machine-id"
  rm -f "$r/var/lib/dbus/machine-id" "$r/etc/hostname" "$r/etc/resolv.conf" "$r/etc/apt/sources.list"
  rm -f "$r"/etc/ssh/ssh_host_*
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/cache/debconf/*-old
}

# rootfs_in_use: prints the overlay mounts (of any run) that have the cached rootfs as their lower layer.
rootfs_in_use() {
  awk -v l="lowerdir=$ROOTFS" '$3 == "overlay" && (index($4, l ",") || index($4, l ":")) { print $2; n++ } END { exit n == 0 }' /proc/self/mounts
}

rootfs_hash() {
  { printf '%s\n' "$SUITE" minbase "${PACKAGES[*]}" "$GUEST_USER"; declare -f customize_rootfs; } \
    | sha256sum | cut -c1-16
}

ensure_rootfs() {
  local hash stamp="$ROOTFS/.k3spve-rootfs" new="$ROOTFS.new" mirror t lock
  hash="$(rootfs_hash)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    log "rootfs: cached $ROOTFS (recipe $hash, $(du -sh "$ROOTFS" 2>/dev/null | cut -f1))"
    return 0
  fi
  if [ -d "$ROOTFS" ] && rootfs_in_use >/dev/null; then
    die "the cached rootfs $ROOTFS must be rebuilt (recipe changed) but hosts run on it ($(rootfs_in_use | paste -sd' ' -)): run '$0 down' (with that run's E2E_RUN_DIR) first"
  fi
  mkdir -p "$CACHE/rootfs"
  exec {lock}>"$CACHE/rootfs/.lock"
  flock -w 900 "$lock" || die "another rootfs build holds $CACHE/rootfs/.lock for 15 minutes"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then exec {lock}>&-; return 0; fi  # built meanwhile
  mirror="$(mirror_url)"
  log "rootfs: debootstrap $SUITE (minbase + ${PACKAGES[*]}) from $mirror -> $ROOTFS"
  t="$(now)"
  rm -rf "$new"
  if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$SUITE" "$new" "$mirror" >"$CACHE/rootfs/$SUITE.debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/rootfs/$SUITE.debootstrap.log" >&2
    die "debootstrap failed (log: $CACHE/rootfs/$SUITE.debootstrap.log); is $mirror a reachable Debian mirror? (DEBIAN_MIRROR=...)"
  fi
  log "rootfs: debootstrap took $(since "$t")"
  customize_rootfs "$new" || die "customizing the rootfs failed"
  printf '%s\n' "$hash" >"$new/.k3spve-rootfs"
  rm -rf "$ROOTFS"
  mv "$new" "$ROOTFS"
  exec {lock}>&-
  log "rootfs: ready ($(du -sh "$ROOTFS" | cut -f1), recipe $hash)"
}

# Serializes the machine-wide part of up and down between concurrent runs. The lock is taken on the
# directory /run itself, so that no lock file is left behind when the last run removes $SHARED.
shared_lock() {
  exec {SHARED_FD}</run
  flock -w 120 "$SHARED_FD" || die "another run holds the k3spve lock (flock on /run) for 2 minutes"
  mkdir -p "$SHARED/runs"
}
shared_unlock() { exec {SHARED_FD}>&-; }

# --- run-directory state ---------------------------------------------------------------------------------
# $RUN/hosts.list : "NAME IP" per host, in creation order
# $RUN/hosts/NAME/ : ip, pid (systemd-nspawn), mode (overlay|copy), root/ (the tree nspawn boots),
#                    upper/ work/ (overlay layers), rancher/ (bound at /var/lib/rancher)
# $RUN/logs/NAME.log : console and nspawn output of each host (kept after `down`)
# $RUN/state/ : what `up` changed on this machine, so `down` restores exactly that
hostdir() { printf '%s/hosts/%s\n' "$RUN" "$1"; }
host_names() { if [ -f "$RUN/hosts.list" ]; then awk '{ print $1 }' "$RUN/hosts.list"; fi; }
host_ip() { awk -v n="$1" '$1 == n { print $2 }' "$RUN/hosts.list" 2>/dev/null; }

# nspawn_pid NAME: the pid of the host's systemd-nspawn if it is alive and really ours.
nspawn_pid() {
  local f pid
  f="$(hostdir "$1")/pid"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "systemd-nspawn .*--directory=$(hostdir "$1")/root " || return 1
  printf '%s\n' "$pid"
}
# leader_pid NAME: the container's PID 1 (init), a child of systemd-nspawn.
leader_pid() {
  local pid c
  pid="$(nspawn_pid "$1")" || return 1
  c="$(cat "/proc/$pid/task/"*/children 2>/dev/null | awk '{ print $1; exit }')"
  [ -n "$c" ] && printf '%s\n' "$c"
}

ssh_opts() {
  printf '%s\n' -i "$KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=2 \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$RUN/known_hosts" -o LogLevel=ERROR
}
host_ssh() {  # host_ssh IP COMMAND...
  local ip="$1"; shift
  local opts; mapfile -t opts < <(ssh_opts)
  # shellcheck disable=SC2029  # the command is meant to run on the host
  ssh "${opts[@]}" "$GUEST_USER@$ip" "$@"
}

# --- network -------------------------------------------------------------------------------------------
ensure_network() {
  mkdir -p "$RUN/state"
  if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    log "network: bridge $BRIDGE with $GATEWAY/24"
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
  fi
  if ! ip -4 -o addr show dev "$BRIDGE" | grep -q " $GATEWAY/24 "; then
    if ip -4 -o addr show dev "$BRIDGE" | grep -q inet; then
      die "bridge $BRIDGE already has another address ($(ip -4 -o addr show dev "$BRIDGE" | awk '{print $4}')); run '$0 down' or set E2E_BRIDGE"
    fi
    ip addr add "$GATEWAY/24" dev "$BRIDGE" || die "cannot add $GATEWAY/24 to $BRIDGE (is $SUBNET used elsewhere on this machine?)"
  fi
  ip link set dev "$BRIDGE" up || die "cannot bring $BRIDGE up"

  if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
    [ -f "$SHARED/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$SHARED/ip_forward.orig"
    log "network: net.ipv4.ip_forward=1 (restored by the last run's down)"
    echo 1 >/proc/sys/net/ipv4/ip_forward || die "cannot enable net.ipv4.ip_forward"
  fi

  # Our own table: masquerade the subnet; forward only the hosts' DNS (to the nameservers they are given)
  # and HTTP/HTTPS (the Debian mirror) out of the subnet, replies back in, and traffic between the hosts.
  local dns
  dns="$(nameservers | paste -sd, -)"
  if ! nft list table ip "$NFT_TABLE" >/dev/null 2>&1; then
    log "network: nftables table ip $NFT_TABLE (masquerade $SUBNET; out: DNS to {$dns}, tcp 80/443)"
    nft -f - <<EOF || die "cannot create nftables table ip $NFT_TABLE"
table ip $NFT_TABLE {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr $SUBNET ip daddr != $SUBNET oifname != "$BRIDGE" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "$BRIDGE" oifname "$BRIDGE" accept
    iifname "$BRIDGE" ip saddr $SUBNET ip daddr { $dns } meta l4proto { tcp, udp } th dport 53 accept
    iifname "$BRIDGE" ip saddr $SUBNET tcp dport { 80, 443 } accept
    oifname "$BRIDGE" ct state established,related accept
    iifname "$BRIDGE" drop
    oifname "$BRIDGE" drop
  }
}
EOF
  fi
}

# --- cgroups --------------------------------------------------------------------------------------------
# Every host gets a cgroup of its own in every mounted hierarchy, below the caller's cgroup. Without this,
# nspawn (--keep-unit, --register=no) puts every container in the same "payload" cgroup and the same v1
# controller cgroups: three systemds then share one cgroup tree (stopping ssh.service in one container kills
# sshd in all three) and three kubelets would share one kubepods tree.
#
# cgroup_dirs: the directory of this process's cgroup in every mounted hierarchy (v1 controllers,
# name=systemd, and the v2 hierarchy), from /proc/self/cgroup and /proc/self/mountinfo.
cgroup_dirs() {
  awk 'FILENAME == "/proc/self/mountinfo" {
         split($0, halves, " - "); split(halves[1], pre, " "); split(halves[2], post, " ")
         if (post[1] == "cgroup2") { v2root = pre[4]; v2mnt = pre[5] }
         else if (post[1] == "cgroup") {
           n = split(post[3], opts, ",")
           for (i = 1; i <= n; i++) if (opts[i] != "rw" && opts[i] != "ro" && !(opts[i] in mnt)) { mnt[opts[i]] = pre[5]; root[opts[i]] = pre[4] }
         }
         next }
       { line = $0; id = substr(line, 1, index(line, ":") - 1); line = substr(line, index(line, ":") + 1)
         ctrl = substr(line, 1, index(line, ":") - 1); path = substr(line, index(line, ":") + 1)
         split(ctrl, c, ",")
         if (ctrl == "") { m = v2mnt; r = v2root } else { m = mnt[c[1]]; r = root[c[1]] }
         if (m == "") next
         if (r != "/" && index(path, r) == 1) path = substr(path, length(r) + 1)
         if (path == "/") path = ""
         print m path }' /proc/self/mountinfo /proc/self/cgroup | sort -u
}

# cgroup_create NAME: creates the host's cgroups, writes their paths to the host directory's "cgroups".
cgroup_create() {
  local name="$1" base dir sub f
  sub="k3spve-e2e-$RUN_ID"
  : >"$(hostdir "$name")/cgroups"
  while read -r base; do
    [ -d "$base" ] || continue
    for dir in "$base/$sub" "$base/$sub/$name"; do
      [ -d "$dir" ] || mkdir "$dir" || die "$name: cannot create cgroup $dir"
      # A new cpuset cgroup starts with no CPUs and no memory nodes: inherit the parent's.
      for f in cpuset.cpus cpuset.mems; do
        if [ -f "$dir/$f" ] && [ -z "$(cat "$dir/$f")" ]; then cat "$(dirname "$dir")/$f" >"$dir/$f"; fi
      done
    done
    printf '%s\n' "$base/$sub/$name" >>"$(hostdir "$name")/cgroups"
    grep -qxF "$base/$sub" "$RUN/state/cgroups" 2>/dev/null || printf '%s\n' "$base/$sub" >>"$RUN/state/cgroups"
  done < <(cgroup_dirs)
}

# cgroup_remove NAME: removes the host's cgroups (and any the container made inside them, e.g. kubepods).
cgroup_remove() {
  local name="$1" f dir
  f="$(hostdir "$name")/cgroups"
  [ -f "$f" ] || return 0
  while read -r dir; do
    [ -d "$dir" ] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ ! -d "$dir" ] || die "$name: cannot remove cgroup $dir (processes left: $(paste -sd' ' - <"$dir/cgroup.procs" 2>/dev/null))"
    rmdir "$(dirname "$dir")" 2>/dev/null || true   # the run's parent, once its last host is gone
  done <"$f"
}

# --- one host --------------------------------------------------------------------------------------------
prepare_host() {  # prepare_host NAME IP
  local name="$1" ip="$2" d r mirror security uid gid t dns=()
  d="$(hostdir "$name")"; r="$d/root"
  t="$(now)"
  mkdir -p "$d/upper" "$d/work" "$d/rancher" "$r" "$RUN/logs"
  if [ "${E2E_LAYER:-overlay}" != copy ] \
     && mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$r" 2>"$d/overlay.err"; then
    echo overlay >"$d/mode"
  else
    [ "${E2E_LAYER:-overlay}" = copy ] || log "$name: overlayfs does not work here ($(cat "$d/overlay.err")); copying the rootfs instead"
    rmdir "$d/upper" "$d/work"
    cp -a --reflink=auto "$ROOTFS/." "$r/" || die "$name: copying the rootfs into $r failed (disk full?)"
    echo copy >"$d/mode"
  fi
  rm -f "$d/overlay.err" "$r/.k3spve-rootfs"

  printf '%s\n' "$name" >"$r/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' \
    "$name" >"$r/etc/hosts"
  systemd-id128 new >"$r/etc/machine-id"
  mapfile -t dns < <(nameservers)
  printf 'nameserver %s\n' "${dns[@]}" >"$r/etc/resolv.conf"
  {
    printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nGateway=%s\n' "$ip" "$GATEWAY"
    printf 'DNS=%s\n' "${dns[@]}"
    printf 'LinkLocalAddressing=no\nIPv6AcceptRA=no\n'
  } >"$r/etc/systemd/network/10-host0.network"

  if [ "${E2E_WRITABLE_PROC_SYS:-0}" = 1 ]; then
    # Not SYSTEMD_NSPAWN_API_VFS_WRITABLE=1: with /sys writable too, networkd waits for a udev that a
    # container does not run and host0 never gets its address.
    printf '[Unit]\nDescription=Make /proc/sys writable (k3s-proxmox e2e test host)\nDefaultDependencies=no\nBefore=sysinit.target systemd-sysctl.service\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/mount -o remount,rw,bind /proc/sys\n' \
      >"$r/etc/systemd/system/k3spve-proc-sys-rw.service"
    mkdir -p "$r/etc/systemd/system/sysinit.target.wants"
    ln -sf ../k3spve-proc-sys-rw.service "$r/etc/systemd/system/sysinit.target.wants/k3spve-proc-sys-rw.service"
  fi

  mirror="$(mirror_url)"; security="$(security_mirror_url)"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$SUITE" "$SUITE"
    [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$security" "$SUITE"
  } >"$r/etc/apt/sources.list.d/debian.sources"

  # Host keys of this host (ed25519 and ECDSA; RSA generation alone would take seconds per host).
  local kt
  for kt in ed25519 ecdsa; do
    ssh-keygen -q -t "$kt" -N '' -C "root@$name" -f "$r/etc/ssh/ssh_host_${kt}_key" </dev/null >/dev/null \
      || die "$name: generating the SSH $kt host key failed"
  done
  printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n' \
    >"$r/etc/ssh/sshd_config.d/05-k3spve-hostkeys.conf"
  install -m 0600 "$KEY.pub" "$r/root/.ssh/authorized_keys"
  uid="$(awk -F: -v u="$GUEST_USER" '$1 == u { print $3 }' "$r/etc/passwd")"
  gid="$(awk -F: -v u="$GUEST_USER" '$1 == u { print $4 }' "$r/etc/passwd")"
  install -m 0600 -o "$uid" -g "$gid" "$KEY.pub" "$r/home/$GUEST_USER/.ssh/authorized_keys"
  # Trust exactly the host keys we just made (no TOFU); write_outputs gathers them into $RUN/known_hosts.
  awk -v ip="$ip" '{ print ip, $1, $2 }' "$r"/etc/ssh/ssh_host_*_key.pub >"$d/known_hosts"
  printf '%s\n' "$ip" >"$d/ip"
  log "$name: $(cat "$d/mode") layer ready ($(since "$t"))"
}

# The nspawn command line. Documented choices:
#  --register=no --keep-unit  PID 1 of this machine is not systemd (no machined, no scope units)
#  --capability=all           K3s (containerd, runc, flannel, kube-proxy) needs all of them
#  SYSTEMD_SECCOMP=0          no syscall filter: runc installs its own seccomp profiles, uses keyctl etc.
#  --bind=/dev/kmsg           the kubelet's OOM watcher reads the kernel log
#  --bind=.../rancher         containerd's overlayfs snapshotter must not sit on an overlayfs
#  --resolv-conf=off --timezone=off  the host owns these files, as a VM does (Ansible sets the timezone)
start_host() {  # start_host NAME
  local name="$1" d pid
  d="$(hostdir "$name")"
  cgroup_create "$name"
  : >"$RUN/logs/$name.log"
  # The launcher moves itself into the host's cgroups, then becomes systemd-nspawn (same pid).
  # shellcheck disable=SC2016  # expanded by the launcher
  SYSTEMD_SECCOMP=0 setsid bash -c \
    'while read -r cg; do echo $$ >"$cg/cgroup.procs" || exit 1; done <"$0"; exec "$@"' "$d/cgroups" \
    systemd-nspawn --boot --directory="$d/root" --machine="$name" \
    --register=no --keep-unit --network-bridge="$BRIDGE" \
    --capability=all --bind=/dev/kmsg --bind="$d/rancher:/var/lib/rancher" \
    --resolv-conf=off --timezone=off --link-journal=no --console=read-only \
    </dev/null >>"$RUN/logs/$name.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$d/pid"
  sleep 0.5
  nspawn_pid "$name" >/dev/null || { tail -n 20 "$RUN/logs/$name.log" >&2; die "$name: systemd-nspawn exited at once (log: $RUN/logs/$name.log)"; }
  log "$name: booting (systemd-nspawn pid $pid, log $RUN/logs/$name.log)"
}

# --- up --------------------------------------------------------------------------------------------------
cmd_up() {
  [ "$#" -gt 0 ] || die "usage: $0 up NAME=IP [NAME=IP ...]"
  need_root
  local spec name ip names=() ips=() i n seen_names=" " seen_ips=" " existing
  for spec in "$@"; do
    [[ "$spec" == *=* ]] || die "'$spec' is not NAME=IP"
    name="${spec%%=*}"; ip="${spec#*=}"
    [[ "$name" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] \
      || die "host name '$name': use 1-63 characters a-z 0-9 - (a hostname label)"
    [[ "$ip" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.([0-9]+)$ ]] || die "'$ip' (host $name) is not an IPv4 address"
    [ "${BASH_REMATCH[1]}" = "$PREFIX" ] || die "$ip (host $name) is outside the test subnet $SUBNET (E2E_SUBNET)"
    n="${BASH_REMATCH[2]}"
    { [ "$n" -ge 2 ] && [ "$n" -le 254 ]; } || die "$ip (host $name): use .2 to .254 ($GATEWAY is the bridge)"
    [[ "$seen_names" != *" $name "* ]] || die "host name $name given twice"
    [[ "$seen_ips" != *" $ip "* ]] || die "address $ip given twice"
    seen_names+="$name "; seen_ips+="$ip "
    names+=("$name"); ips+=("$ip")
  done
  mkdir -p "$RUN/hosts" "$RUN/logs" "$RUN/state"
  touch "$RUN/hosts.list"
  # Addresses already taken by other hosts of this run.
  for i in "${!names[@]}"; do
    existing="$(awk -v ip="${ips[$i]}" -v n="${names[$i]}" '$2 == ip && $1 != n { print $1 }' "$RUN/hosts.list")"
    [ -z "$existing" ] || die "${ips[$i]} already belongs to host $existing of this run: pick another address or run '$0 down'"
  done

  ensure_tools
  ensure_rootfs

  if [ ! -f "$KEY" ]; then
    log "ssh: new ed25519 key $KEY"
    ssh-keygen -q -t ed25519 -N '' -C "k3spve-e2e@$(hostname)" -f "$KEY" || die "ssh-keygen failed"
  fi

  shared_lock
  printf '%s\n' "$RUN" >"$SHARED/runs/$RUN_ID"
  if ! mountpoint -q "$NSPAWN_RUNDIR"; then
    mkdir -p "$NSPAWN_RUNDIR"
    mount -t tmpfs -o mode=0755 tmpfs "$NSPAWN_RUNDIR" || die "cannot mount a tmpfs on $NSPAWN_RUNDIR"
    touch "$NSPAWN_RUNDIR/.k3spve-e2e"   # marks the tmpfs as ours, for the last run's down
  fi
  ensure_network
  shared_unlock

  local tb pids=() todo=() failed=0; tb="$(now)"
  for i in "${!names[@]}"; do
    name="${names[$i]}"; ip="${ips[$i]}"
    if nspawn_pid "$name" >/dev/null; then
      [ "$(host_ip "$name")" = "$ip" ] || die "$name is running with address $(host_ip "$name"), not $ip: run '$0 down' first"
      log "$name: already running ($ip)"
      continue
    fi
    if [ -d "$(hostdir "$name")" ]; then
      log "$name: stale layer from an earlier run; recreating it"
      remove_host "$name"
    fi
    awk -v n="$name" '$1 != n' "$RUN/hosts.list" >"$RUN/hosts.list.tmp"
    printf '%s %s\n' "$name" "$ip" >>"$RUN/hosts.list.tmp"
    mv "$RUN/hosts.list.tmp" "$RUN/hosts.list"
    todo+=("$name")
    prepare_host "$name" "$ip" &   # in parallel: host-key generation dominates
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { log "${todo[$i]}: preparing the layer failed"; failed=1; }; done
  [ "$failed" = 0 ] || die "preparing the hosts failed (see above); '$0 down' cleans up"
  cat "$RUN"/hosts/*/known_hosts >"$RUN/known_hosts" 2>/dev/null || true
  for name in "${todo[@]+"${todo[@]}"}"; do start_host "$name"; done

  wait_ssh "${names[@]}"
  log "all ${#names[@]} hosts answer SSH ($(since "$tb") after the first boot started)"
  write_outputs
  cmd_status
  log "up done in $(since "$T0"). SSH: ssh -F $RUN/ssh_config <name>   key: $KEY   hosts: $RUN/hosts.json"
}

wait_ssh() {  # wait_ssh NAME...: probes all pending hosts in parallel, once a second, up to BOOT_TIMEOUT
  local deadline=$(( $(date +%s) + BOOT_TIMEOUT )) pending=("$@") still name i round=0
  local -a probes
  while [ "${#pending[@]}" -gt 0 ]; do
    probes=()
    for name in "${pending[@]}"; do
      if ! nspawn_pid "$name" >/dev/null; then
        tail -n 30 "$RUN/logs/$name.log" >&2
        die "$name: the container stopped while booting (log: $RUN/logs/$name.log)"
      fi
      host_ssh "$(host_ip "$name")" true </dev/null >/dev/null 2>&1 &
      probes+=($!)
    done
    still=()
    for i in "${!pending[@]}"; do
      if wait "${probes[$i]}"; then log "${pending[$i]}: SSH ok ($GUEST_USER@$(host_ip "${pending[$i]}"))"
      else still+=("${pending[$i]}"); fi
    done
    pending=("${still[@]+"${still[@]}"}")
    [ "${#pending[@]}" -eq 0 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for name in "${pending[@]}"; do printf -- '--- %s\n' "$RUN/logs/$name.log" >&2; tail -n 15 "$RUN/logs/$name.log" >&2; done
      die "no SSH after ${BOOT_TIMEOUT}s from: ${pending[*]} (logs in $RUN/logs/; E2E_BOOT_TIMEOUT raises the limit)"
    fi
    round=$((round + 1))
    [ $((round % 5)) -ne 1 ] || log "waiting for SSH: ${pending[*]}"
    sleep 1
  done
}

write_outputs() {
  local name ip first=1
  {
    printf '['
    while read -r name ip; do
      [ "$first" = 1 ] || printf ','
      first=0
      printf '\n  {"name": "%s", "ip": "%s", "user": "%s"}' "$name" "$ip" "$GUEST_USER"
    done <"$RUN/hosts.list"
    printf '\n]\n'
  } >"$RUN/hosts.json"
  {
    printf '# generated by e2e/hosts.sh: ssh -F %s <name>\n' "$RUN/ssh_config"
    while read -r name ip; do
      printf 'Host %s %s\n  HostName %s\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n\n' \
        "$name" "$ip" "$ip" "$GUEST_USER" "$KEY" "$RUN/known_hosts"
    done <"$RUN/hosts.list"
  } >"$RUN/ssh_config"
}

# --- status ----------------------------------------------------------------------------------------------
cmd_status() {
  local name ip pid st
  if [ ! -s "$RUN/hosts.list" ]; then log "no hosts in $RUN"; return 0; fi
  while read -r name ip; do
    if pid="$(nspawn_pid "$name")"; then
      st="$(host_ssh "$ip" systemctl is-system-running </dev/null 2>/dev/null || true)"
      printf '%-16s %-15s running  nspawn-pid=%-7s ssh=%s system=%s\n' "$name" "$ip" "$pid" \
        "$([ -n "$st" ] && echo ok || echo no)" "${st:-?}"
    else
      printf '%-16s %-15s stopped\n' "$name" "$ip"
    fi
  done <"$RUN/hosts.list"
}

# --- down ------------------------------------------------------------------------------------------------
stop_host() {  # stop_host NAME: orderly poweroff (SIGTERM to nspawn = SIGRTMIN+3 to the container's init), then kill
  local name="$1" pid leader i
  pid="$(nspawn_pid "$name")" || return 0
  log "$name: powering off (nspawn pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do
    nspawn_pid "$name" >/dev/null || return 0
    sleep 0.5
  done
  log "$name: no clean shutdown after 30s; killing the container"
  if leader="$(leader_pid "$name")"; then kill -KILL "$leader" 2>/dev/null || true; fi
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do
    nspawn_pid "$name" >/dev/null || return 0
    sleep 0.5
  done
  die "$name: systemd-nspawn pid $pid does not die"
}

remove_host() {  # remove_host NAME: unmount and delete the host's layer
  local name="$1" d m
  d="$(hostdir "$name")"
  [ -d "$d" ] || return 0
  # Anything still mounted below the host directory, deepest first.
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || die "$name: cannot unmount $m"
  done < <(awk -v p="$d/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
  cgroup_remove "$name"
  rm -rf --one-file-system "$d" || die "$name: cannot remove $d"
}

cmd_down() {
  need_root
  local name d leftovers=() m ports=() cgroups=()
  local td; td="$(now)"
  # Remember what to verify afterwards: the bridge's ports (nspawn's vb-* veths) and the run's cgroups.
  mapfile -t ports < <(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
  [ ! -f "$RUN/state/cgroups" ] || mapfile -t cgroups <"$RUN/state/cgroups"
  if [ -s "$RUN/hosts.list" ]; then
    for name in $(host_names); do stop_host "$name" & done
    wait
    for name in $(host_names); do nspawn_pid "$name" >/dev/null && die "$name is still running"; done
  fi
  # Every host directory, listed or not (an interrupted `up` may leave one behind).
  if [ -d "$RUN/hosts" ]; then
    for d in "$RUN"/hosts/*/; do
      [ -d "$d" ] || continue
      name="$(basename "$d")"
      nspawn_pid "$name" >/dev/null && stop_host "$name"
      remove_host "$name"
    done
    rmdir "$RUN/hosts"
  fi
  rm -f "$RUN/hosts.list" "$RUN/hosts.json" "$RUN/ssh_config" "$RUN/known_hosts" "$KEY" "$KEY.pub"

  if nft list table ip "$NFT_TABLE" >/dev/null 2>&1; then
    nft delete table ip "$NFT_TABLE" || die "cannot delete nftables table ip $NFT_TABLE"
    log "removed nftables table ip $NFT_TABLE"
  fi
  if ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" || die "cannot delete bridge $BRIDGE"
    log "removed bridge $BRIDGE"
  fi
  if [ -f "$RUN/state/cgroups" ]; then
    while read -r m; do
      [ ! -d "$m" ] || rmdir "$m" || die "cannot remove cgroup $m (still in use?)"
    done <"$RUN/state/cgroups"
    log "removed the run's cgroups ($(wc -l <"$RUN/state/cgroups") hierarchies)"
    rm -f "$RUN/state/cgroups"
  fi
  # Machine-wide leftovers go with the last active run (runs whose machines are all gone count as ended).
  shared_lock
  rm -f "$SHARED/runs/$RUN_ID"
  local f other others=()
  for f in "$SHARED"/runs/*; do
    [ -f "$f" ] || continue
    other="$(cat "$f")"
    # Active: machines running, or an `up` registered in the last 15 minutes that may still be booting them.
    if pgrep -f -- "systemd-nspawn .*--directory=$other/hosts/" >/dev/null \
       || [ -n "$(find "$f" -mmin -15 2>/dev/null)" ]; then others+=("$other"); else rm -f "$f"; fi
  done
  if [ "${#others[@]}" -gt 0 ]; then
    log "other runs are up (${others[*]}): ip_forward and $NSPAWN_RUNDIR stay as they are for them"
  else
    if [ -f "$SHARED/ip_forward.orig" ]; then
      cat "$SHARED/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward
      log "restored net.ipv4.ip_forward=$(cat "$SHARED/ip_forward.orig")"
      rm -f "$SHARED/ip_forward.orig"
    fi
    if [ -e "$NSPAWN_RUNDIR/.k3spve-e2e" ]; then
      if pgrep -x systemd-nspawn >/dev/null; then
        log "$NSPAWN_RUNDIR stays mounted: other systemd-nspawn processes (not ours) use it"
      else
        umount "$NSPAWN_RUNDIR" || die "cannot unmount $NSPAWN_RUNDIR"
        log "unmounted the tmpfs on $NSPAWN_RUNDIR"
      fi
    fi
    rmdir "$SHARED/runs" "$SHARED" 2>/dev/null || true
  fi
  shared_unlock
  rmdir "$RUN/state" 2>/dev/null || true

  # Verify: nothing of ours is left (logs in $RUN/logs/ are kept on purpose).
  if pgrep -f -- "systemd-nspawn .*--directory=$RUN/hosts/" >/dev/null; then leftovers+=("nspawn processes: $(pgrep -f -- "systemd-nspawn .*--directory=$RUN/hosts/" | paste -sd' ')"); fi
  m="$(awk -v p="$RUN/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts)"
  [ -z "$m" ] || leftovers+=("mounts: $m")
  [ ! -d "$RUN/hosts" ] || leftovers+=("directory $RUN/hosts")
  ! ip link show dev "$BRIDGE" >/dev/null 2>&1 || leftovers+=("link $BRIDGE")
  for m in "${ports[@]+"${ports[@]}"}"; do ! ip link show dev "$m" >/dev/null 2>&1 || leftovers+=("link $m"); done
  for m in "${cgroups[@]+"${cgroups[@]}"}"; do [ ! -d "$m" ] || leftovers+=("cgroup $m"); done
  ! nft list table ip "$NFT_TABLE" >/dev/null 2>&1 || leftovers+=("nftables table ip $NFT_TABLE")
  [ "${#leftovers[@]}" -eq 0 ] || die "left behind: ${leftovers[*]}"
  log "down done in $(since "$td"); checked: no systemd-nspawn of $RUN, no mounts under $RUN, no $RUN/hosts,"
  log "  no link $BRIDGE nor its ${#ports[@]} veth ports, none of the run's ${#cgroups[@]} cgroups, no nft table ip $NFT_TABLE;"
  log "  kept on purpose: logs in $RUN/logs/ and the cached rootfs $ROOTFS"
}

cmd_remove() {
  [ "$#" -gt 0 ] || die "usage: $0 remove NAME..."
  need_root
  local name
  for name in "$@"; do
    [ -n "$(host_ip "$name")" ] || die "$name is not a host of this run ($RUN/hosts.list)"
    stop_host "$name"
    remove_host "$name"
    awk -v n="$name" '$1 != n' "$RUN/hosts.list" >"$RUN/hosts.list.tmp"
    mv "$RUN/hosts.list.tmp" "$RUN/hosts.list"
    log "$name: removed"
  done
  cat "$RUN"/hosts/*/known_hosts >"$RUN/known_hosts" 2>/dev/null || true
  write_outputs
}

cmd_ssh() {
  [ "$#" -ge 1 ] || die "usage: $0 ssh NAME [COMMAND...]"
  local name="$1" ip; shift
  ip="$(host_ip "$name")"
  [ -n "$ip" ] || die "no host $name in $RUN/hosts.list"
  local opts; mapfile -t opts < <(ssh_opts)
  exec ssh "${opts[@]}" "$GUEST_USER@$ip" "$@"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  remove) shift; cmd_remove "$@" ;;
  down) shift; cmd_down ;;
  status) shift; cmd_status ;;
  rootfs) shift; need_root; ensure_tools; ensure_rootfs ;;
  ssh) shift; cmd_ssh "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; die "unknown command '${1:-}'" ;;
esac
