# shellcheck shell=bash
# UEFI tier: the host boots the way a BitBuilder host does. qemu with OVMF's Secure Boot build
# and the lab's own PK/KEK/db enrolled, a GPT disk whose ESP `bbhv boot install` made, signed
# UKIs of the trixie kernel, and the VM tier's root filesystem. All uefi scenarios of a run
# share one qemu process that reboots through the sequence of lab/uefi/boot-runner.sh; each
# scenario's check then judges the reports on the host. Sourced by lab/run after vm.sh; uses
# its helpers (fail_scenario, pass, prepare_scenario, install_project, ...).

UEFI_TIMEOUT=${LAB_UEFI_TIMEOUT:-1500}      # the whole qemu run, every reboot included
UEFI_ESP_UUID=6c6ab0e5-0b5e-4c4e-9d1e-000000b0071a

# uefi_build ROOT BUILD LOG: lab/uefi/build.sh inside the guest tree (its trixie tools:
# ukify, sbsign, OVMF, virt-fw-vars, mtools), BUILD bound at /lab-build.
uefi_build() {
  local root=$1 build=$2 log=$3
  must_be_under "$build" "$LAB_VAR" || return 1
  mkdir -p "$build" || return 1
  install -m755 "$LAB_DIR/uefi/build.sh" "$build/build.sh" || return 1
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 interruptible systemd-nspawn -q --register=no --keep-unit \
    --private-network -D "$root" --bind="$build:/lab-build" \
    --setenv=LAB_ESP_UUID="$UEFI_ESP_UUID" --setenv=LAB_BOOT_TIMEOUT="${LAB_BOOT_TIMEOUT:-300}" \
    -- /lab-build/build.sh </dev/null >>"$log" 2>&1
}

# uefi_boot IMG BUILD OUT ACCEL PIDFILE: one qemu run through every reboot until the guest
# powers off. PIDFILE is DIR/qemu.pid of the tier's directory, where clean-up (vm_stop) looks.
uefi_boot() {
  local img=$1 build=$2 out=$3 accel=$4 pidfile=$5
  local -a acc
  case $accel in
    kvm) acc=(-accel kvm -cpu host) ;;
    *)   acc=(-accel 'tcg,thread=multi' -cpu max) ;;
  esac
  rm -f -- "$out/results.txt" "$out/serial.log" "$pidfile"
  : > "$out/results.txt"
  # OVMF's Secure Boot build needs SMM, its flash in secure mode and S3 off. The root disk
  # (first, /dev/vda) is a snapshot; the ESP disk is this run's own copy, so the guest's and
  # systemd-boot's renames persist across the reboots. No -no-reboot: reboots are the test.
  interruptible timeout -k 10 "$UEFI_TIMEOUT" qemu-system-x86_64 "${acc[@]}" \
    -machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
    -global ICH9-LPC.disable_s3=1 \
    -drive "if=pflash,format=raw,unit=0,file=$build/code.fd,readonly=on" \
    -drive "if=pflash,format=raw,unit=1,file=$build/vars.fd" \
    -smp 2 -m 2048 -nodefaults -display none -monitor none -nic none \
    -serial "file:$out/serial.log" \
    -drive "file=$img/root.raw,if=virtio,format=raw,cache=unsafe,snapshot=on" \
    -drive "file=$build/disk.raw,if=virtio,format=raw,cache=unsafe" \
    -device virtio-serial-pci -chardev "file,id=res,path=$out/results.txt" \
    -device 'virtserialport,chardev=res,name=lab.results' -pidfile "$pidfile" \
    </dev/null >"$out/qemu.log" 2>&1
}

run_uefi_scenarios() {
  local dir=$WORK/uefi root=$WORK/uefi/root out=$WORK/uefi/out build=$WORK/uefi/build
  local log=$LOGS/uefi.log lib t0 tb tq rc name accel reason secs t1 t2 tend
  local -a ready=()
  t0=$(now)
  : > "$log"
  lib=$root/usr/local/lib/lab
  if ! mkdir "$dir" "$out" || ! ct_mount "$ROOTFS" "$dir" >>"$log" 2>&1 ||
     ! install_project "$root" "$log" ||
     ! install -D -m755 "$LAB_DIR/uefi/boot-runner.sh" "$lib/boot-runner.sh" >>"$log" 2>&1 ||
     ! install -D -m644 "$LAB_DIR/uefi/lab-boot-runner.service" \
         "$root/etc/systemd/system/lab-boot-runner.service" >>"$log" 2>&1; then
    for name in "$@"; do fail_scenario "$name" "cannot prepare the UEFI guest tree" "$log"; done
    return
  fi
  say "lab: uefi tier: keys, signed UKIs, ESP (bbhv boot install), GPT disk, OVMF vars"
  tb=$(now)
  if ! uefi_build "$root" "$build" "$log"; then
    for name in "$@"; do fail_scenario "$name" "building the UKIs, the ESP or the firmware vars failed" "$log"; done
    return
  fi
  # The guest: its ESP at /efi, the db certificate (public) for `bbhv boot stage`, and the
  # two UKIs it stages. systemd-boot-update.service would replace the signed systemd-boot
  # with the package's unsigned one (docs/boot.md): masked, as on a BitBuilder host.
  # No nofail: systemd-bless-boot.service runs after local-fs.target and must find the ESP.
  if ! printf 'PARTUUID=%s /efi vfat umask=0077 0 2\n' "$UEFI_ESP_UUID" >> "$root/etc/fstab" ||
     ! install -D -m644 "$build/keys/db.crt" "$root/etc/bitbuilder/boot/db.crt" ||
     ! printf '[boot]\nesp = "/efi"\nsigning_cert = "/etc/bitbuilder/boot/db.crt"\n' \
         > "$root/etc/bitbuilder/host.toml" ||
     ! install -D -m644 "$build/uki/b-2.efi" "$root/var/lib/lab-boot/b-2.efi" ||
     ! install -D -m644 "$build/uki/b-3.efi" "$root/var/lib/lab-boot/b-3.efi" ||
     ! install -D -m644 "$build/uki/b-4.efi" "$root/var/lib/lab-boot/b-4.efi" ||
     ! ln -sf /dev/null "$root/etc/systemd/system/systemd-boot-update.service"; then
    for name in "$@"; do fail_scenario "$name" "cannot prepare the UEFI guest tree" "$log"; done
    return
  fi
  cp "$log" "$out/build.log"
  for name in "$@"; do
    : > "$LOGS/$name.log"
    if prepare_scenario "$name" "$root" "$dir/data/$name" "$LOGS/$name.log"; then
      ready+=("$name")
    else
      fail_scenario "$name" "prepare: $(reason_or "$dir/data/$name/.reason" failed)" "$LOGS/$name.log"
    fi
  done
  [ ${#ready[@]} -gt 0 ] || return 0
  if ! vm_image "$root" "$dir/img" >>"$log" 2>&1; then
    for name in "${ready[@]}"; do fail_scenario "$name" "cannot build the VM image" "$log"; done
    return
  fi
  say "lab: uefi tier: built in $(elapsed "$tb") s"
  accel=${LAB_ACCEL:-tcg}
  [ "$accel" = kvm ] || accel=tcg
  say "lab: uefi tier: one qemu run (OVMF Secure Boot, reboots) for ${ready[*]} (accel $accel, timeout ${UEFI_TIMEOUT}s)"
  tq=$(now)
  rc=0
  uefi_boot "$dir/img" "$build" "$out" "$accel" "$dir/qemu.pid" || rc=$?
  tend=$(now)
  cp "$out/serial.log" "$LOGS/uefi.serial.log" 2>/dev/null || true
  cp "$out/results.txt" "$LOGS/uefi.results.log" 2>/dev/null || true
  say "lab: uefi tier: qemu ran $(elapsed "$tq" "$tend") s (exit $rc; $(grep -c '^@@BOOT ' "$out/results.txt") full boots)"
  # Each scenario's time: the stretch of the shared run it needs (secureboot: start to the
  # first signed boot; fallback: to the boot after the three failed tries; bless: the rest).
  t1=$(sed -n 's/^@@BOOT 1 .* t=\([0-9]*\).*/\1/p' "$out/results.txt")
  t2=$(sed -n 's/^@@BOOT 2 .* t=\([0-9]*\).*/\1/p' "$out/results.txt")
  for name in "${ready[@]}"; do
    case $name in
      boot-secureboot) secs=$(uefi_span "${tq%.*}" "$t1") ;;
      boot-ab-fallback) secs=$(uefi_span "$t1" "$t2") ;;
      boot-ab-bless) secs=$(uefi_span "$t2" "${tend%.*}") ;;
      *) secs=$(elapsed "$tq" "$tend") ;;
    esac
    rm -f "$dir/data/$name/.reason"
    rc=0
    # shellcheck disable=SC2016 # expanded by the inner bash
    LAB_REASON=$dir/data/$name/.reason LAB_DATA=$out \
      timeout -k 5 60 bash -c '
        . "$0/lib/common.sh"; . "$0/lib/assert.sh"; . "$0/lib/uefi-assert.sh"
        . "$1"; check' "$LAB_DIR" "$(scenario_file "$name")" </dev/null >>"$LOGS/$name.log" 2>&1 || rc=$?
    if [ $rc = 0 ]; then pass "$name" "$secs"
    else
      reason=$(reason_or "$dir/data/$name/.reason" "check failed (exit $rc)")
      fail_scenario "$name" "$reason" "$LOGS/$name.log"
    fi
  done
  say "lab: uefi tier total $(elapsed "$t0") s (build, image, qemu, checks)"
}

# uefi_span FROM TO (epoch seconds) -> TO - FROM, or "?" when either is missing.
uefi_span() {
  if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then echo $(( $2 - $1 )); else echo '?'; fi
}
