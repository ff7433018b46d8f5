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
