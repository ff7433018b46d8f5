# shellcheck shell=bash
# The project as an operator gets it: its Debian package (scripts/package), built once per
# run and installed into each guest tree by the guest's own dpkg. Sourced after common.sh by
# lab/run, lab/demo and the scenarios' prepare shells; relies on the caller's shell options.

# build_package PROJECT OUT [SUFFIX] [nobuild]: PROJECT's scripts/package into OUT (under
# $LAB_VAR; its staging too, so a killed run leaves nothing elsewhere), the version with
# SUFFIX (`~prev` sorts before the plain version). `nobuild`: package the binaries already
# built (a second package of the same build), no cargo run. Gzip instead of xz
# (PACKAGE_FAST=1): the same files, 1 s instead of 25 s. Sets PACKAGE_DEB to the .deb's path.
# shellcheck disable=SC2034 # read by the callers
PACKAGE_DEB=''
build_package() {
  local project=$1 out=$2 suffix=${3:-} deb
  local -a vars=(PACKAGE_OUT="$out" TMPDIR="$out/tmp" PACKAGE_FAST=1 BBHV_VERSION_SUFFIX="$suffix")
  PACKAGE_DEB=''
  must_be_under "$out" "$LAB_VAR" || return 1
  [ -x "$project/scripts/package" ] || { say "lab: no scripts/package in $project"; return 1; }
  # CARGO=true: the Makefile's build step does nothing (its CARGO ?= cargo).
  [ "${4:-}" != nobuild ] || vars+=(CARGO=true)
  mkdir -p "$out/tmp" || return 1
  interruptible_out "$out/deb.path" env "${vars[@]}" "$project/scripts/package" || return 1
  cat "$out/deb.path" >&2               # make's lines, then the .deb's path
  deb=$(tail -n 1 "$out/deb.path")
  case $deb in /*) ;; *) deb=$project/$deb ;; esac
  [ -f "$deb" ] || { say "lab: scripts/package printed no .deb ('$deb')"; return 1; }
  # shellcheck disable=SC2034 # read by the callers
  PACKAGE_DEB=$deb
}

# install_deb ROOT DEB: `dpkg -i DEB` by the guest's own dpkg, chrooted into ROOT (a guest
# tree under $LAB_VAR), the way an image build installs a package. No systemd runs in the
# tree, so the maintainer scripts skip their systemctl calls (they test /run/systemd/system,
# which the tree does not have). Nothing is forced: the package's Depends must be in the
# rootfs (lab/rootfs/packages). The .deb is copied in for dpkg and removed afterwards.
install_deb() {
  local root=$1 deb=$2 dir=$1/var/cache/bitbuilder-lab-deb
  must_be_under "$dir" "$LAB_VAR" || return 1
  [ -f "$deb" ] || { say "lab: no package '$deb'"; return 1; }
  [ -x "$root/usr/bin/dpkg" ] || { say "lab: no dpkg in $root"; return 1; }
  mkdir -p "$dir" && cp -- "$deb" "$dir/" || return 1
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
    dpkg -i "/var/cache/bitbuilder-lab-deb/${deb##*/}" || return 1
  safe_rm "$dir"
}
