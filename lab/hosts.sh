#!/usr/bin/env bash
# The lab's machines: each simulated Proxmox VM is a real Debian 12 host on this machine, a systemd-nspawn
# container booted from a cached debootstrap root filesystem (the "cloud image"), on a private bridge, configured
# at first boot by the real cloud-init from the NoCloud seed Proxmox would write to the VM's cloud-init drive
# (hostname, user and SSH key, static address, gateway, DNS). The Proxmox VE API simulator (lab/pve-sim) runs
# these commands when a VM starts, stops or is destroyed; the e2e and `make lab` use the rest.
#
#   lab/hosts.sh vm-start VMID --name NAME --mac MAC --seed DIR [--cpus N] [--memory-mib M]
#                                   boot the VM's host (its disk is kept between boots); DIR holds user-data,
#                                   meta-data, network-config and vendor-data
#   lab/hosts.sh vm-stop VMID [--graceful]   power it off: at once (qm stop), or an orderly shutdown
#   lab/hosts.sh vm-destroy VMID    power off and delete the host and its disk
#   lab/hosts.sh vm-status VMID     running | stopped | absent
#   lab/hosts.sh vm-agent VMID      the host's interfaces (`ip -j -s addr`) if qemu-guest-agent is installed in it;
#                                   exit 3 if not (the simulator then answers "QEMU guest agent is not running")
#   lab/hosts.sh known-hosts        "IP keytype key" for every running host whose SSH host keys exist
#   lab/hosts.sh net-up             the bridge and the nftables table (vm-start makes them too)
#   lab/hosts.sh status             one line per host
#   lab/hosts.sh down               stop every host, remove everything this script made, verify it
#   lab/hosts.sh rootfs             only build (or check) the cached root filesystem
#
# Needs root on Linux. Environment:
#   K3SPVE_CACHE   cache root (default ~/.cache/k3s-proxmox); the rootfs lives in $K3SPVE_CACHE/rootfs/bookworm-cloud
#   LAB_DIR        run folder: host layers, console logs, state (default /tmp/k3spve-lab)
#   LAB_SUBNET     private subnet, a /24 (default 10.213.57.0/24); the bridge takes .1
#   LAB_BRIDGE     bridge name (default k3spve-br0), Proxmox's vmbr0 here;  LAB_NFT_TABLE  (default k3spve_lab)
#   LAB_DNS        nameservers the hosts may reach, space-separated (default: this machine's resolv.conf)
#   LAB_LAYER=copy give each host a full copy of the rootfs instead of an overlay (default: overlay if it works)
#   DEBIAN_MIRROR  Debian mirror URL (default: taken from this machine's apt sources)
#   DEBIAN_SECURITY_MIRROR  security mirror URL for the hosts' apt (default: from apt sources; "none" omits it)
#
# What a host is: overlayfs (upper layer in the run folder: the VM's disk) over the read-only cached rootfs, or a
# `cp -a --reflink=auto` copy where overlayfs does not work; /var/lib/rancher is a plain folder of the run folder
# bound in, so containerd's overlayfs snapshotter never stacks overlay on overlay. Its NIC is a veth pair: one end
# on the bridge (k<lab id>t<VMID>, where Proxmox has tap<VMID>i0) and, inside, an interface with the VM's net0 MAC
# that cloud-init renames to eth0, as on a Proxmox VM. The container runs with all capabilities, no seccomp
# filter, /dev/kmsg bound and writable cgroup hierarchies, in cgroups of its own (below the caller's) in every
# hierarchy, with the VM's cores and memory as the CPU quota and memory limit. Network: a bridge with .1 of the
# subnet and an nftables table that masquerades the subnet and forwards only DNS and HTTP(S) out of it (apt).
# Root in a host is root on this machine (all capabilities, no user namespace): lab hosts, not a sandbox.
# Concurrent runs on one machine: give each its own LAB_DIR, LAB_SUBNET, LAB_BRIDGE and LAB_NFT_TABLE.
set -euo pipefail

CACHE="${K3SPVE_CACHE:-$HOME/.cache/k3s-proxmox}"
RUN="${LAB_DIR:-/tmp/k3spve-lab}"
SUBNET="${LAB_SUBNET:-10.213.57.0/24}"
BRIDGE="${LAB_BRIDGE:-k3spve-br0}"
NFT_TABLE="${LAB_NFT_TABLE:-k3spve_lab}"
SUITE=bookworm
ROOTFS="$CACHE/rootfs/$SUITE-cloud"
NSPAWN_RUNDIR=/run/systemd/nspawn
RUN_ID="$(printf '%s' "$RUN" | sha256sum | cut -c1-8)"
# Machine-wide state shared by concurrent runs (different LAB_DIR, LAB_SUBNET, LAB_BRIDGE): the list of
# active runs, and the original net.ipv4.ip_forward, restored when the last run goes down.
SHARED=/run/k3spve-lab

# The rootfs recipe, a Debian 12 "genericcloud" image in spirit: debootstrap's minbase plus systemd, sshd, sudo,
# cloud-init (and python3-cffi-backend, which debootstrap does not resolve for it), systemd-networkd and -resolved.
# No user and no SSH host keys: cloud-init makes them at first boot. No qemu-guest-agent: `make provision`
# installs it, as on the real image. Changing it (or customize_rootfs below) changes the stamp hash and the next
# start rebuilds the cache.
PACKAGES=(systemd systemd-sysv dbus libpam-systemd openssh-server python3 sudo iproute2 ca-certificates
          iputils-ping procps kmod less cloud-init python3-cffi-backend systemd-resolved netbase)

log() { printf '[hosts] %s\n' "$*" >&2; }
die() { printf '[hosts] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

usage() { sed -n '2,/^# Needs root/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# --- preconditions -----------------------------------------------------------------------------------
need_root() {
  [ "$(uname -s)" = Linux ] || die "lab hosts need Linux (systemd-nspawn); this is $(uname -s)"
  [ "$(id -u)" = 0 ] || die "lab hosts need root (bridge, nftables, mounts, systemd-nspawn): run with sudo"
}

# Subnet: a.b.c.0/24 -> PREFIX=a.b.c, GATEWAY=a.b.c.1
[[ "$SUBNET" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.0/24$ ]] \
  || die "LAB_SUBNET=$SUBNET must be a /24 written a.b.c.0/24"
for o in "${BASH_REMATCH[@]:1:3}"; do [ "$o" -le 255 ] || die "LAB_SUBNET=$SUBNET: octet $o > 255"; done
PREFIX="${SUBNET%.0/24}"
GATEWAY="$PREFIX.1"
[[ "$BRIDGE" =~ ^[a-zA-Z0-9_-]{1,15}$ ]] || die "LAB_BRIDGE=$BRIDGE is not a valid interface name (max 15 chars)"
[[ "$NFT_TABLE" =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]] || die "LAB_NFT_TABLE=$NFT_TABLE is not a valid nftables name"
case "$RUN" in /*) ;; *) die "LAB_DIR=$RUN must be an absolute path" ;; esac
[ "$RUN" != / ] || die "LAB_DIR must not be /"

# --- host tools --------------------------------------------------------------------------------------
ensure_tools() {
  local want=(debootstrap:debootstrap systemd-nspawn:systemd-container ip:iproute2 nft:nftables
              ssh:openssh-client ssh-keygen:openssh-client setsid:util-linux nsenter:util-linux
              systemd-id128:systemd flock:util-linux unshare:util-linux) missing=() t
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
  if [ -n "${LAB_DNS:-}" ]; then
    # shellcheck disable=SC2086  # a space-separated list
    printf '%s\n' $LAB_DNS
    return
  fi
  local ns f
  for f in /etc/resolv.conf /run/systemd/resolve/resolv.conf; do
    [ -f "$f" ] || continue
    ns="$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ { print $2 }' "$f")"
    [ -n "$ns" ] && { printf '%s\n' "$ns"; return; }
  done
  die "no usable IPv4 nameserver in /etc/resolv.conf (a loopback stub cannot serve the hosts): set LAB_DNS='a.b.c.d'"
}

# --- cached rootfs -------------------------------------------------------------------------------------
# Runs inside the fresh debootstrap tree ($1): what a cloud image carries. Everything per VM comes from
# cloud-init at first boot.
customize_rootfs() {
  local r="$1" mirror="$2" security="$3"
  chroot "$r" systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
  # The image's own cloud-init settings: only the NoCloud datasource (the cloud-init drive), and a locale that
  # exists without generating one.
  printf 'datasource_list: [NoCloud, None]\nlocale: C.UTF-8\n' >"$r/etc/cloud/cloud.cfg.d/90-k3spve-lab.cfg"
  printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' \
    >"$r/etc/ssh/sshd_config.d/10-k3spve-lab.conf"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$SUITE" "$SUITE"
    [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$security" "$SUITE"
  } >"$r/etc/apt/sources.list.d/debian.sources"
  rm -f "$r/etc/apt/sources.list"
  # Writable cgroup hierarchies: nspawn mounts the cgroup v1 controllers read-only inside the container
  # (only name=systemd and the unified hierarchy are writable); a VM has them writable and the kubelet
  # creates its pod cgroups there. This early unit remounts them read-write before anything else starts.
  cat >"$r/usr/local/sbin/k3spve-cgroup-rw" <<'EOF'
#!/bin/sh
# Lab host only (k3s-proxmox): make the cgroup hierarchies nspawn mounted read-only writable.
set -e
awk '$2 == "/sys/fs/cgroup" || $2 ~ "^/sys/fs/cgroup/" { print $2 }' /proc/self/mounts | while read -r m; do
  mount -o remount,rw,bind "$m" 2>/dev/null || mount -o remount,rw "$m"
done
EOF
  chmod 0755 "$r/usr/local/sbin/k3spve-cgroup-rw"
  cat >"$r/etc/systemd/system/k3spve-cgroup-rw.service" <<'EOF'
[Unit]
Description=Make cgroup hierarchies writable (k3s-proxmox lab host)
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
  # Per-machine state must not come from the image:
  : >"$r/etc/machine-id"
  rm -f "$r/var/lib/dbus/machine-id" "$r/etc/hostname"
  rm -f "$r"/etc/ssh/ssh_host_*
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/cache/debconf/*-old "$r"/var/lib/cloud/*
}

# rootfs_in_use: prints the overlay mounts (of any run) that have the cached rootfs as their lower layer.
rootfs_in_use() {
  awk -v l="lowerdir=$ROOTFS" '$3 == "overlay" && (index($4, l ",") || index($4, l ":")) { print $2; n++ } END { exit n == 0 }' /proc/self/mounts
}

rootfs_hash() {
  { printf '%s\n' "$SUITE" minbase "${PACKAGES[*]}" "$(mirror_url)" "$(security_mirror_url)"; declare -f customize_rootfs; } \
    | sha256sum | cut -c1-16
}

ensure_rootfs() {
  local hash stamp="$ROOTFS/.k3spve-rootfs" new="$ROOTFS.new" mirror t lock
  hash="$(rootfs_hash)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then return 0; fi
  if [ -d "$ROOTFS" ] && rootfs_in_use >/dev/null; then
    die "the cached rootfs $ROOTFS must be rebuilt (recipe changed) but hosts run on it ($(rootfs_in_use | paste -sd' ' -)): run '$0 down' (with that run's LAB_DIR) first"
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
        "$SUITE" "$new" "$mirror" >"$CACHE/rootfs/$SUITE-cloud.debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/rootfs/$SUITE-cloud.debootstrap.log" >&2
    die "debootstrap failed (log: $CACHE/rootfs/$SUITE-cloud.debootstrap.log); is $mirror a reachable Debian mirror? (DEBIAN_MIRROR=...)"
  fi
  log "rootfs: debootstrap took $(since "$t")"
  customize_rootfs "$new" "$mirror" "$(security_mirror_url)" || die "customizing the rootfs failed"
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


# --- run-folder state ---------------------------------------------------------------------------------------
# $RUN/hosts/vm<VMID>/ : name, mac, pid (systemd-nspawn), mode (overlay|copy), root/ (the tree nspawn boots),
#                        upper/ work/ (overlay layers: the VM's disk), rancher/ (bound at /var/lib/rancher), cgroups
# $RUN/logs/vm<VMID>.log : console and nspawn output of each host (kept after `down`)
# $RUN/state/ : what this script changed on this machine, so `down` restores exactly that
hostdir() { printf '%s/hosts/vm%s\n' "$RUN" "$1"; }
vm_ids() { local d; for d in "$RUN"/hosts/vm*/; do [ -d "$d" ] && basename "$d" | sed 's/^vm//'; done; return 0; }
check_vmid() { [[ "$1" =~ ^[1-9][0-9]{2,8}$ ]] || die "'$1' is not a VM id (100-999999999)"; }
# tap_name VMID [v]: the VM's NIC on the bridge (or, with v, its other end before it moves into the host). Proxmox
# names a VM's tap device tap<VMID>i0; interface names are machine-wide and several labs may run, so the lab's own
# id comes first (15 characters at most).
tap_name() { printf 'k%s%s%s\n' "${RUN_ID:0:4}" "${2:-t}" "$1"; }

# nspawn_pid VMID: the pid of the host's systemd-nspawn if it is alive and really ours.
nspawn_pid() {
  local f pid
  f="$(hostdir "$1")/pid"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "systemd-nspawn .*--directory=$(hostdir "$1")/root " || return 1
  printf '%s\n' "$pid"
}
# leader_pid VMID: the container's PID 1 (init), a child of systemd-nspawn.
leader_pid() {
  local pid c
  pid="$(nspawn_pid "$1")" || return 1
  c="$(cat "/proc/$pid/task/"*/children 2>/dev/null | awk '{ print $1; exit }')"
  [ -n "$c" ] && printf '%s\n' "$c"
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
      die "bridge $BRIDGE already has another address ($(ip -4 -o addr show dev "$BRIDGE" | awk '{print $4}')); run '$0 down' or set LAB_BRIDGE"
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

# cgroup_create VMID: creates the host's cgroups, writes their paths to the host directory's "cgroups".
cgroup_create() {
  local id="$1" name="vm$1" base dir sub f
  sub="k3spve-lab-$RUN_ID"
  : >"$(hostdir "$id")/cgroups"
  while read -r base; do
    [ -d "$base" ] || continue
    for dir in "$base/$sub" "$base/$sub/$name"; do
      # VMs start in parallel: another one may make the shared parent first.
      mkdir "$dir" 2>/dev/null || [ -d "$dir" ] || die "$name: cannot create cgroup $dir"
      # A new cpuset cgroup starts with no CPUs and no memory nodes: inherit the parent's.
      for f in cpuset.cpus cpuset.mems; do
        if [ -f "$dir/$f" ] && [ -z "$(cat "$dir/$f")" ]; then cat "$(dirname "$dir")/$f" >"$dir/$f"; fi
      done
    done
    printf '%s\n' "$base/$sub/$name" >>"$(hostdir "$id")/cgroups"
    grep -qxF "$base/$sub" "$RUN/state/cgroups" 2>/dev/null || printf '%s\n' "$base/$sub" >>"$RUN/state/cgroups"
  done < <(cgroup_dirs)
}

# cgroup_remove VMID: removes the host's cgroups (and any the container made inside them, e.g. kubepods).
cgroup_remove() {
  local name="vm$1" f dir
  f="$(hostdir "$1")/cgroups"
  [ -f "$f" ] || return 0
  while read -r dir; do
    [ -d "$dir" ] || continue
    # The container's last processes may still be on their way out for a moment after nspawn exits.
    for _ in $(seq 1 20); do
      find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$dir" ] || break
      sleep 0.5
    done
    [ ! -d "$dir" ] || die "$name: cannot remove cgroup $dir (processes left: $(paste -sd' ' - <"$dir/cgroup.procs" 2>/dev/null))"
    rmdir "$(dirname "$dir")" 2>/dev/null || true   # the run's parent, once its last host is gone
  done <"$f"
}

# --- one VM's host --------------------------------------------------------------------------------------------
# make_layer VMID: the host's root (its disk), made on first start and kept until vm-destroy.
make_layer() {
  local id="$1" d r
  d="$(hostdir "$id")"; r="$d/root"
  mkdir -p "$d/rancher" "$r" "$RUN/logs"
  if [ -f "$d/mode" ] && [ "$(cat "$d/mode")" = copy ]; then return 0; fi
  if [ -f "$d/mode" ] && mountpoint -q "$r"; then return 0; fi
  mkdir -p "$d/upper" "$d/work"
  if [ "${LAB_LAYER:-overlay}" != copy ] \
     && mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$r" 2>"$d/overlay.err"; then
    echo overlay >"$d/mode"
  else
    [ "${LAB_LAYER:-overlay}" = copy ] || log "vm $id: overlayfs does not work here ($(cat "$d/overlay.err")); copying the rootfs instead"
    rmdir "$d/upper" "$d/work" 2>/dev/null || true
    cp -a --reflink=auto "$ROOTFS/." "$r/" || die "vm $id: copying the rootfs into $r failed (disk full?)"
    echo copy >"$d/mode"
  fi
  rm -f "$d/overlay.err" "$r/.k3spve-rootfs"
}

# set_limits VMID CPUS MEMORY_MIB: the VM's cores and memory as the CPU quota and memory limit of its cgroups.
set_limits() {
  local id="$1" cpus="$2" mib="$3" dir
  while read -r dir; do
    [ ! -f "$dir/memory.limit_in_bytes" ] || echo $((mib * 1024 * 1024)) >"$dir/memory.limit_in_bytes" || log "vm $id: cannot set memory.limit_in_bytes"
    [ ! -f "$dir/memory.max" ] || echo $((mib * 1024 * 1024)) >"$dir/memory.max" || log "vm $id: cannot set memory.max"
    if [ -f "$dir/cpu.cfs_quota_us" ]; then
      { echo 100000 >"$dir/cpu.cfs_period_us" && echo $((cpus * 100000)) >"$dir/cpu.cfs_quota_us"; } || log "vm $id: cannot set the CPU quota"
    fi
    [ ! -f "$dir/cpu.max" ] || echo "$((cpus * 100000)) 100000" >"$dir/cpu.max" || log "vm $id: cannot set cpu.max"
  done <"$(hostdir "$id")/cgroups"
}

# The nspawn command line. Documented choices:
#  unshare + a read-only /sys  nspawn checks a moved-in interface with udev only when /sys is writable; this
#                             machine runs no udev (a container's /sys is mounted read-only by nspawn anyway)
#  --network-interface=       the VM's NIC, with its MAC, moved into the host's own network namespace
#  --register=no --keep-unit  PID 1 of this machine is not systemd (no machined, no scope units)
#  --capability=all           K3s (containerd, runc, flannel, kube-proxy) needs all of them
#  SYSTEMD_SECCOMP=0          no syscall filter: runc installs its own seccomp profiles, uses keyctl etc.
#  --bind=/dev/kmsg           the kubelet's OOM watcher reads the kernel log
#  --bind=.../rancher         containerd's overlayfs snapshotter must not sit on an overlayfs
#  --resolv-conf=off --timezone=off  the host owns these files, as a VM does (cloud-init and Ansible set them)
cmd_vm_start() {
  need_root
  local id="${1:-}" name="" mac="" seed="" cpus=1 mib=1024 d r tap peer pid
  check_vmid "$id"; shift
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --name) name="$2"; shift 2 ;;
      --mac) mac="$2"; shift 2 ;;
      --seed) seed="$2"; shift 2 ;;
      --cpus) cpus="$2"; shift 2 ;;
      --memory-mib) mib="$2"; shift 2 ;;
      *) die "vm-start: unknown option $1" ;;
    esac
  done
  [[ "$name" =~ ^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$ ]] || die "vm-start $id: --name '$name' is not a host name"
  [[ "$mac" =~ ^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$ ]] || die "vm-start $id: --mac '$mac' is not a MAC address"
  [ -f "$seed/user-data" ] && [ -f "$seed/meta-data" ] || die "vm-start $id: --seed '$seed' has no user-data and meta-data"
  [[ "$cpus" =~ ^[1-9][0-9]*$ ]] && [[ "$mib" =~ ^[1-9][0-9]*$ ]] || die "vm-start $id: --cpus and --memory-mib must be positive numbers"
  nspawn_pid "$id" >/dev/null && die "vm $id is already running"
  ensure_tools
  ensure_rootfs
  net_up
  d="$(hostdir "$id")"; r="$d/root"
  make_layer "$id"
  printf '%s\n' "$name" >"$d/name"
  printf '%s\n' "$mac" >"$d/mac"
  # The cloud-init drive: Proxmox writes the seed to an ISO labelled cidata; cloud-init's NoCloud source reads the
  # same four files from this folder.
  install -d -m 0700 "$r/var/lib/cloud/seed/nocloud"
  install -m 0600 "$seed/user-data" "$seed/meta-data" "$seed/network-config" "$seed/vendor-data" "$r/var/lib/cloud/seed/nocloud/"
  cgroup_create "$id"
  set_limits "$id" "$cpus" "$mib"
  tap="$(tap_name "$id")"; peer="$(tap_name "$id" v)"
  ip link delete "$tap" 2>/dev/null || true
  ip link add "$tap" type veth peer name "$peer" || die "vm $id: cannot create its NIC ($tap)"
  ip link set "$peer" address "$mac" || die "vm $id: cannot give its NIC the MAC $mac"
  ip link set "$tap" master "$BRIDGE" up || die "vm $id: cannot attach $tap to $BRIDGE"
  # The launcher moves itself into the host's cgroups, then becomes systemd-nspawn (same pid).
  # shellcheck disable=SC2016  # expanded by the launcher
  SYSTEMD_SECCOMP=0 setsid bash -c \
    'while read -r cg; do echo $$ >"$cg/cgroup.procs" || exit 1; done <"$0"; exec "$@"' "$d/cgroups" \
    unshare --mount --propagation slave sh -c 'mount -o remount,bind,ro /sys && exec "$0" "$@"' \
    systemd-nspawn --boot --directory="$d/root" --machine="$name" \
    --register=no --keep-unit --network-interface="$peer" \
    --capability=all --bind=/dev/kmsg --bind="$d/rancher:/var/lib/rancher" \
    --resolv-conf=off --timezone=off --link-journal=no --console=read-only \
    </dev/null >>"$RUN/logs/vm$id.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$d/pid"
  sleep 0.5
  nspawn_pid "$id" >/dev/null || { tail -n 20 "$RUN/logs/vm$id.log" >&2; die "vm $id: systemd-nspawn exited at once (log: $RUN/logs/vm$id.log)"; }
  log "vm $id ($name): booting (systemd-nspawn pid $pid, $cpus CPU, $mib MiB, NIC $tap $mac, console $RUN/logs/vm$id.log)"
}

# stop_vm VMID [graceful]: with `graceful`, SIGTERM to nspawn = SIGRTMIN+3 to the container's init (an orderly
# poweroff, 30 s at most). Without it, as `qm stop` ends the QEMU process: the container's init is killed, and its
# PID namespace with it, so nothing in the guest runs a shutdown step (keepalived sends no goodbye, etcd no leave).
stop_vm() {
  local id="$1" graceful="${2:-}" pid leader i
  pid="$(nspawn_pid "$id")" || return 0
  if [ -n "$graceful" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      nspawn_pid "$id" >/dev/null || break
      sleep 0.5
    done
    ! nspawn_pid "$id" >/dev/null || log "vm $id: no clean shutdown after 30s; killing it"
  fi
  if nspawn_pid "$id" >/dev/null; then
    if leader="$(leader_pid "$id")"; then kill -KILL "$leader" 2>/dev/null || true; fi
    for i in $(seq 1 40); do
      nspawn_pid "$id" >/dev/null || break
      [ "$i" -ne 10 ] || kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    done
    nspawn_pid "$id" >/dev/null && die "vm $id: systemd-nspawn pid $pid does not die"
  fi
  ip link delete "$(tap_name "$id")" 2>/dev/null || true
  cgroup_remove "$id"
  return 0
}

# remove_vm VMID: unmount and delete the host's layer (its disk).
remove_vm() {
  local id="$1" d m
  d="$(hostdir "$id")"
  [ -d "$d" ] || return 0
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || die "vm $id: cannot unmount $m"
  done < <(awk -v p="$d/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
  cgroup_remove "$id"
  rm -rf --one-file-system "$d" || die "vm $id: cannot remove $d"
}

cmd_vm_stop() {
  need_root
  local id="${1:-}"; check_vmid "$id"
  stop_vm "$id" "$([ "${2:-}" = --graceful ] && echo 1 || true)"
  log "vm $id: powered off"
}

cmd_vm_destroy() {
  need_root
  local id="${1:-}"; check_vmid "$id"
  stop_vm "$id"
  remove_vm "$id"
  log "vm $id: host and disk removed"
}

cmd_vm_status() {
  local id="${1:-}"; check_vmid "$id"
  if nspawn_pid "$id" >/dev/null; then echo running
  elif [ -d "$(hostdir "$id")" ]; then echo stopped
  else echo absent; fi
}

# The guest agent's answer: the host's real interfaces, once qemu-guest-agent is installed in it. (The agent's
# virtio channel does not exist in a container, so its daemon never starts there; the simulator stands in for the
# channel and reads the interfaces from the host's network namespace.)
cmd_vm_agent() {
  need_root
  local id="${1:-}" leader; check_vmid "$id"
  leader="$(leader_pid "$id")" || exit 3
  [ -x "$(hostdir "$id")/root/usr/sbin/qemu-ga" ] || exit 3
  nsenter -t "$leader" -n ip -j -s addr show
}

cmd_known_hosts() {
  need_root
  local id leader ip
  for id in $(vm_ids); do
    leader="$(leader_pid "$id")" || continue
    for ip in $(nsenter -t "$leader" -n ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }'); do
      for f in "$(hostdir "$id")"/root/etc/ssh/ssh_host_*_key.pub; do
        [ -f "$f" ] && awk -v ip="$ip" '{ print ip, $1, $2 }' "$f"
      done
    done
  done
  return 0
}

net_up() {
  shared_lock
  printf '%s\n' "$RUN" >"$SHARED/runs/$RUN_ID"
  if ! mountpoint -q "$NSPAWN_RUNDIR"; then
    mkdir -p "$NSPAWN_RUNDIR"
    mount -t tmpfs -o mode=0755 tmpfs "$NSPAWN_RUNDIR" || die "cannot mount a tmpfs on $NSPAWN_RUNDIR"
    touch "$NSPAWN_RUNDIR/.k3spve-lab"   # marks the tmpfs as ours, for the last run's down
  fi
  ensure_network
  shared_unlock
}

cmd_status() {
  local id st ip leader
  if [ -z "$(vm_ids)" ]; then log "no hosts in $RUN"; return 0; fi
  for id in $(vm_ids); do
    st="$(cmd_vm_status "$id")"; ip=""
    if leader="$(leader_pid "$id")"; then
      ip="$(nsenter -t "$leader" -n ip -4 -o addr show scope global 2>/dev/null | awk '{ print $4; exit }')"
    fi
    printf '%-8s %-16s %-8s %s\n' "$id" "$(cat "$(hostdir "$id")/name" 2>/dev/null || echo '?')" "$st" "${ip:--}"
  done
}

# --- down ------------------------------------------------------------------------------------------------
cmd_down() {
  need_root
  local id leftovers=() m ports=() cgroups=()
  local td; td="$(now)"
  # Remember what to verify afterwards: the bridge's ports (the VMs' tap devices) and the run's cgroups.
  mapfile -t ports < <(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
  [ ! -f "$RUN/state/cgroups" ] || mapfile -t cgroups <"$RUN/state/cgroups"
  for id in $(vm_ids); do stop_vm "$id" & done
  wait
  for id in $(vm_ids); do
    nspawn_pid "$id" >/dev/null && die "vm $id is still running"
    remove_vm "$id"
  done
  rmdir "$RUN/hosts" 2>/dev/null || true
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
    if [ -e "$NSPAWN_RUNDIR/.k3spve-lab" ]; then
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


case "${1:-}" in
  vm-start) shift; cmd_vm_start "$@" ;;
  vm-stop) shift; cmd_vm_stop "$@" ;;
  vm-destroy) shift; cmd_vm_destroy "$@" ;;
  vm-status) shift; cmd_vm_status "$@" ;;
  vm-agent) shift; cmd_vm_agent "$@" ;;
  known-hosts) shift; cmd_known_hosts ;;
  net-up) shift; need_root; ensure_tools; net_up ;;
  status) shift; cmd_status ;;
  down) shift; cmd_down ;;
  rootfs) shift; need_root; ensure_tools; ensure_rootfs ;;
  -h|--help|help) usage ;;
  *) usage >&2; die "unknown command '${1:-}'" ;;
esac
