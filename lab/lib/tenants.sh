# shellcheck shell=bash
# Host-side helpers for scenarios that apply a tenant repository to a guest tree.
# git-ops comes later; until then the lab applies a checkout by hand, following the on-disk
# contract: /var/lib/bitbuilder/generations/<seq>-<sha>/ and the `current` symlink.
# Sourced after common.sh; relies on the caller's shell options, and every function checks
# its own steps (they also run in `bash -e` prepare shells, where errexit is off inside
# `||` lists). Whatever they remove is under $LAB_VAR (safe_rm).

# shellcheck disable=SC2034 # used by the scenarios
EXAMPLE_REPO=$REPO_DIR/examples/repo

# repo_copy SRC DEST: a scratch copy of a repository tree to modify in a scenario (DEST
# under $LAB_VAR).
repo_copy() {
  safe_rm "$2" || return 1
  mkdir -p "$2" && cp -a "$1/." "$2/" && safe_rm "$2/.git"
}

# repo_sha DIR -> the 40-hex id of a commit of DIR's contents (a throwaway git repo with a
# fixed author and date, so the same tree always gives the same sha).
repo_sha() {
  local tmp rc=0
  if ! mkdir -p "$LAB_VAR/tmp" || ! tmp=$(mktemp -d "$LAB_VAR/tmp/sha.XXXXXX") || [ ! -d "$tmp" ]; then
    echo "repo_sha: cannot make a temporary directory under $LAB_VAR/tmp" >&2; return 1
  fi
  {
    cp -a "$1/." "$tmp/" && safe_rm "$tmp/.git" &&
    (
      cd "$tmp" && git init -q && git add -A &&
      GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z \
        git -c user.name=lab -c user.email=lab@localhost commit -q -m lab && git rev-parse HEAD
    )
  } || rc=1
  safe_rm "$tmp" || rc=1
  return "$rc"
}

# install_host_config ROOT: /etc/bitbuilder/host.toml from examples/host.toml, unless the
# scenario put one there first (the example repository's VLAN needs the uplink it names).
install_host_config() {
  local file=$1/etc/bitbuilder/host.toml
  must_be_under "$file" "$LAB_VAR" || return 1
  [ -e "$file" ] || { mkdir -p "${file%/*}" && cp "$REPO_DIR/examples/host.toml" "$file"; }
}

# add_generation ROOT SRC SEQ -> prints the generation name "<seq>-<sha>" (and installs the
# example host.toml when ROOT has none)
add_generation() {
  local root=$1 src=$2 seq=$3 sha gen dir
  if ! sha=$(repo_sha "$src") || [ ${#sha} != 40 ]; then echo "cannot commit $src" >&2; return 1; fi
  gen=$seq-$sha dir=$root/var/lib/bitbuilder/generations/$seq-$sha
  must_be_under "$dir" "$LAB_VAR" || return 1
  install_host_config "$root" || return 1
  mkdir -p "$dir" && cp -a "$src/." "$dir/" && safe_rm "$dir/.git" || return 1
  echo "$gen"
}

# set_current ROOT GEN [STATE_DIR]: point `current` at a generation (atomic rename).
set_current() {
  local dir=${3:-$1/var/lib/bitbuilder}
  must_be_under "$dir" "$LAB_VAR" || return 1
  ln -sfn "generations/$2" "$dir/current.lab-new" && mv -T "$dir/current.lab-new" "$dir/current"
}

# apply_repo ROOT SRC: generation 1 from SRC, made current. Prints the generation name.
apply_repo() {
  local gen; gen=$(add_generation "$1" "$2" 1) || return 1
  set_current "$1" "$gen" && echo "$gen"
}

# tenant_ids SRC [all|enabled|disabled]
tenant_ids() {
  local src=$1 which=${2:-enabled} f
  for f in "$src"/tenants/*/metadata.json; do
    [ -e "$f" ] || continue
    case $which in
      all) ;;
      enabled) [ "$(jq -r 'if has("enabled") then .enabled else true end' "$f")" = true ] || continue ;;
      disabled) [ "$(jq -r 'if has("enabled") then .enabled else true end' "$f")" = false ] || continue ;;
    esac
    basename "$(dirname "$f")"
  done
}

# slice_of ID -> tenants-<bucket>-<escaped id>.slice, as TenantId::slice makes it: the
# bucket is the 64-bit FNV-1a hash of the id modulo 64, in two hex digits (bash's
# arithmetic wraps like u64's; the low 6 bits are the same); '-' would mean nesting in a
# slice name, so it is escaped the way systemd-escape does it (acme-prod -> acme\x2dprod).
slice_of() {
  local id=$1 h=-3750763034362895579 i c
  for ((i = 0; i < ${#id}; i++)); do
    printf -v c '%d' "'${id:i:1}"
    h=$(( (h ^ c) * 1099511628211 ))
  done
  printf 'tenants-%02x-%s.slice\n' $((h & 63)) "$(systemd-escape "$id")"
}

# unit_of TEMPLATE ID -> TEMPLATE@ID.service (the instance is the id as it is).
unit_of() { echo "$1@$2.service"; }

# has_key METADATA_JSON JQ_FILTER: the tenant declares it (non-empty).
has_key() { jq -e "($2 // empty) | if type == \"object\" then length > 0 else true end" "$1" >/dev/null; }

# expected_limits METADATA_JSON -> "Property=value" lines, values in the form
# `systemctl show` prints (bytes for sizes, microseconds for the CPU quota).
# Only the limits the tenant declares are listed.
expected_limits() {
  jq -r '
    def bytes: if type == "number" then .
      else (capture("^(?<n>[0-9.]+)(?<u>[KMGTkmgt]?)$") // error("bad size \(.)")) as $m
        | ($m.n | tonumber) * ({"": 1, "K": 1024, "M": 1048576, "G": 1073741824,
                               "T": 1099511627776}[$m.u | ascii_upcase]) | floor end;
    .resources // {} |
    (if .memoryMax  then "MemoryMax=\(.memoryMax | bytes)"   else empty end),
    (if .memoryHigh then "MemoryHigh=\(.memoryHigh | bytes)" else empty end),
    (if .cpuQuota   then "CPUQuotaPerSecUSec=\(.cpuQuota | rtrimstr("%") | tonumber * 10000 | floor)"
                    else empty end),
    (if .cpuWeight  then "CPUWeight=\(.cpuWeight)" else empty end),
    (if .ioWeight   then "IOWeight=\(.ioWeight)"   else empty end),
    (if .tasksMax   then "TasksMax=\(.tasksMax)"   else empty end)
  ' "$1"
}

# --- containers (issue #9) ------------------------------------------------------------------

# busybox_image ROOT NAME: a directory image /var/lib/bitbuilder/images/NAME in the guest
# tree, built from the rootfs's own busybox-static (a shell and the usual tools, nothing
# else): bin/ with busybox and its applet links, the empty mount points nspawn needs, and an
# os-release. Prints nothing; fails when busybox is missing.
busybox_image() {
  local root=$1 dir=$1/var/lib/bitbuilder/images/$2 applet
  must_be_under "$dir" "$LAB_VAR" || return 1
  [ -x "$root/bin/busybox" ] || { echo "no busybox in the guest rootfs" >&2; return 1; }
  mkdir -p "$dir/bin" "$dir/etc" "$dir/usr/lib" "$dir/proc" "$dir/sys" "$dir/dev" \
    "$dir/run" "$dir/tmp" "$dir/var" "$dir/root" || return 1
  cp "$root/bin/busybox" "$dir/bin/busybox" || return 1
  for applet in sh echo cat ls id sleep wc grep ip ping nc hostname env printf readlink \
                stat mount touch mkdir head tr true false; do
    ln -sf busybox "$dir/bin/$applet" || return 1
  done
  printf 'ID=busybox\nNAME="BitBuilder lab busybox"\n' > "$dir/usr/lib/os-release" || return 1
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$dir/etc/passwd"
}

# tenants_on_tmpfs ROOT: /var/lib/tenants on a tmpfs in the guest. The container tier's
# root is itself an overlayfs, which cannot be the upper layer of the containers' overlays
# (a real host has ext4/xfs there).
tenants_on_tmpfs() {
  local dir=$1/etc/systemd/system
  must_be_under "$dir" "$LAB_VAR" || return 1
  mkdir -p "$dir/local-fs.target.wants" || return 1
  printf '%s\n' '[Unit]' 'Description=Tenant state on a tmpfs (lab: the root is an overlayfs)' \
    '[Mount]' 'What=tmpfs' 'Where=/var/lib/tenants' 'Type=tmpfs' 'Options=mode=0755' \
    > "$dir/var-lib-tenants.mount" || return 1
  ln -sf ../var-lib-tenants.mount "$dir/local-fs.target.wants/var-lib-tenants.mount"
}

# machine_of TENANT NAME -> the machine name (<tenant>.<name>)
machine_of() { echo "$1.$2"; }

# nspawn_settings MACHINE...: until tenant-generator writes render::Root::Nspawn entries to
# /run/systemd/nspawn (a separate change), they are in its output directory; copy them
# where nspawn reads them, saying so. Once the generator writes them, this does nothing.
nspawn_settings() {
  local m
  for m in "$@"; do
    in_guest test -e "/run/systemd/nspawn/$m.nspawn" && continue
    in_guest test -e "/run/systemd/generator/$m.nspawn" ||
      fail "no settings for $m: neither /run/systemd/nspawn/$m.nspawn nor the generator's copy"
    echo "note: /run/systemd/nspawn/$m.nspawn missing (the generator does not write Root::Nspawn yet); copying it"
    in_guest mkdir -p /run/systemd/nspawn
    in_guest cp "/run/systemd/generator/$m.nspawn" "/run/systemd/nspawn/$m.nspawn"
  done
}

# tiny_vm_image ROOT IMG WORK: the lab's VM image in IMG (under $LAB_VAR): IMG/vmlinuz, the
# guest rootfs's own kernel, and IMG/initrd.img, a busybox initramfs built in WORK whose
# /init prints "LAB-VM-MARKER init is up" (with the guest's uptime, for timings) to the
# serial console, brings up the address of the `ip=` parameter (as `bbhv vm run` writes it)
# and prints LAB-VM-NET / LAB-VM-NET-OK, and powers off on the ACPI power button (busybox
# acpid; LAB-VM-POWEROFF). Prints nothing; fails naming what is missing.
tiny_vm_image() {
  local root=$1 img=$2 initrd=$3 bb=$1/bin/busybox kernels ver mod a
  must_be_under "$img" "$LAB_VAR" || return 1
  must_be_under "$initrd" "$LAB_VAR" || return 1
  [ -x "$bb" ] || { echo "no busybox-static in the guest rootfs" >&2; return 1; }
  [ -x "$root/usr/bin/qemu-system-x86_64" ] ||
    { echo "no qemu-system-x86_64 in the guest rootfs (lab/rootfs/packages)" >&2; return 1; }
  kernels=("$root"/boot/vmlinuz-*)
  [ -e "${kernels[-1]}" ] || { echo "no kernel in the guest rootfs" >&2; return 1; }
  ver=${kernels[-1]##*/vmlinuz-}
  mkdir -p "$img" "$initrd/bin" "$initrd/etc/acpi" "$initrd/proc" "$initrd/sys" "$initrd/dev" \
    "$initrd/modules" || return 1
  cp -- "${kernels[-1]}" "$img/vmlinuz" || return 1
  # The initramfs: busybox, /init, acpid's configuration, and the modules the power button
  # and the network need when they are not built in (evdev: /dev/input; button: the ACPI
  # button; virtio_net and what it depends on).
  cp -- "$bb" "$initrd/bin/busybox" || return 1
  for a in sh mount echo sleep insmod poweroff cat ip ping tr ifconfig route; do
    ln -sf busybox "$initrd/bin/$a" || return 1
  done
  for mod in kernel/drivers/input/evdev kernel/drivers/acpi/button kernel/net/core/failover \
             kernel/drivers/net/net_failover kernel/drivers/net/virtio_net; do
    if grep -q "^$mod.ko" "$root/lib/modules/$ver/modules.builtin"; then continue; fi
    if [ -e "$root/lib/modules/$ver/$mod.ko.xz" ]; then
      xz -dc "$root/lib/modules/$ver/$mod.ko.xz" > "$initrd/modules/${mod##*/}.ko" || return 1
    elif [ -e "$root/lib/modules/$ver/$mod.ko" ]; then
      cp -- "$root/lib/modules/$ver/$mod.ko" "$initrd/modules/" || return 1
    else
      echo "no $mod module for kernel $ver" >&2; return 1
    fi
  done
  cat > "$initrd/init" <<'EOI' || return 1
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in evdev button failover net_failover virtio_net; do
  [ -e "/modules/$m.ko" ] && insmod "/modules/$m.ko"
done
echo "LAB-VM-MARKER init is up after $(cut -d' ' -f1 /proc/uptime) s: $(cat /proc/cmdline)"
# The ACPI power button: acpid runs the action of PWRF (below), which powers off. -d keeps
# it in the foreground logging to the console (daemonized, it did not act on the event here;
# -f alone wants /var/log/acpid.log).
busybox acpid -d -c /etc/acpi -a /etc/acpid.conf &
# ip=<client>::<gateway>:<netmask>::<device>:off, as bbhv vm run writes it (Debian's kernel
# has no IP_PNP; initramfs-tools reads the same parameter in a real guest).
for arg in $(cat /proc/cmdline); do
  case $arg in ip=*)
    set -- $(echo "${arg#ip=}" | tr ':' ' ')
    ip link set lo up
    ifconfig "$4" "$1" netmask "$3" up && route add default gw "$2" &&
      echo "LAB-VM-NET $4 $(cat /sys/class/net/$4/address) $1 via $2" &&
      ping -c 3 -W 3 "$2" >/dev/null && echo "LAB-VM-NET-OK gateway $2 answers" ;;
  esac
done
while :; do sleep 3600; done
EOI
  printf 'PWRF poweroff\n' > "$initrd/etc/acpid.conf" || return 1
  printf '#!/bin/sh\necho "LAB-VM-POWEROFF power button: powering off"\nexec busybox poweroff -f\n' \
    > "$initrd/etc/acpi/poweroff" || return 1
  chmod 755 "$initrd/init" "$initrd/etc/acpi/poweroff" || return 1
  (cd "$initrd" && find . | "$bb" cpio -o -H newc 2>/dev/null) | gzip -1 > "$img/initrd.img" || return 1
}

# pin_vm_image REPO NAME IMG: set kernelSha256 and initrdSha256 of REPO/images/NAME.json (a
# scratch copy's) to the digests of IMG/vmlinuz and IMG/initrd.img, the way an image's
# publisher pins a build; keeps every other key. Prints nothing.
pin_vm_image() {
  local json=$1/images/$2.json k i
  must_be_under "$json" "$LAB_VAR" || return 1
  [ -f "$json" ] || { echo "no $json" >&2; return 1; }
  k=$(sha256sum < "$3/vmlinuz" | cut -c1-64) && i=$(sha256sum < "$3/initrd.img" | cut -c1-64) || return 1
  jq --arg k "$k" --arg i "$i" '.kernelSha256 = $k | .initrdSha256 = $i' "$json" > "$json.new" &&
    mv -- "$json.new" "$json"
}
