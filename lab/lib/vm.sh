# shellcheck shell=bash
# VM tier: the trixie kernel + rootfs under qemu, one boot for all VM scenarios of a run.
# Sourced after common.sh; relies on the caller's shell options.

# vm_image ROOT OUTDIR: ext4 image of ROOT built by mkfs.ext4 -d (no loop mounts, no
# privileges beyond reading ROOT), plus the kernel and the small initramfs next to it.
vm_image() {
  local root=$1 out=$2 mb
  local -a kernels initrds
  must_be_under "$out" "$LAB_VAR" || return 1
  mkdir -p "$out" || return 1
  # The tree plus 1 GiB of room for what the scenarios write; the file is sparse anyway.
  mb=$(du -sm "$root" | cut -f1) || return 1
  mb=$((mb + 1024))
  rm -f -- "$out/root.raw"
  mkfs.ext4 -q -F -L labroot -d "$root" "$out/root.raw" "${mb}M" || return 1
  # Globs sort; the last is the newest version.
  kernels=("$root"/boot/vmlinuz-*) initrds=("$root"/boot/initrd.img-*)
  if [ ! -e "${kernels[-1]}" ] || [ ! -e "${initrds[-1]}" ]; then
    echo "no kernel or initramfs in $root/boot"; return 1
  fi
  cp -- "${kernels[-1]}" "$out/vmlinuz" && cp -- "${initrds[-1]}" "$out/initrd.img"
}

# vm_accel IMGDIR LOG -> prints "kvm" or "tcg". KVM counts only if /dev/kvm opens AND a probe
# boot reaches the kernel's init within 20 s: on these machines /dev/kvm is kvm_pvm, which
# opens fine but cannot run a stock kernel (qemu aborts on -cpu host, or hangs in the
# decompressor). LAB_ACCEL=kvm|tcg skips the probe.
vm_accel() {
  local img=$1 log=$2 fd
  case ${LAB_ACCEL:-auto} in kvm|tcg) echo "$LAB_ACCEL"; return ;; esac
  if ! { exec {fd}<>/dev/kvm; } 2>/dev/null; then echo tcg; return; fi
  exec {fd}>&-
  rm -f "$log"
  timeout -k 2 20 qemu-system-x86_64 -accel kvm -cpu host -m 256 -display none -no-reboot \
    -nic none -serial "file:$log" -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "console=ttyS0 panic=-1 rdinit=/bin/true" </dev/null >>"$log.qemu" 2>&1 &
  # $pid is our own child, not yet waited for: it cannot have been reused.
  local pid=$! _
  for _ in $(seq 40); do
    grep -qa 'Run /bin/true as init process' "$log" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
  done
  if grep -qa 'Run /bin/true as init process' "$log" 2>/dev/null; then echo kvm; else echo tcg; fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 0
}

# vm_boot IMGDIR OUTDIR ACCEL TIMEOUT [KEEP]: boot, let lab-runner.service run the scenarios,
# return when the guest powered off (or, with KEEP, when its results are complete).
# Results: OUTDIR/results.txt (virtio-serial), OUTDIR/serial.log (console).
vm_boot() {
  local img=$1 out=$2 accel=$3 timeout=$4 keep=${5:-} append
  local -a acc serial
  case $accel in
    kvm) acc=(-accel kvm -cpu host) ;;
    *)   acc=(-accel 'tcg,thread=multi' -cpu max) ;;
  esac
  append="root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=false"
  append+=" systemd.firstboot=off systemd.wants=lab-runner.service"
  append+=" lab.boot_timeout=${LAB_BOOT_TIMEOUT:-300} lab.check_timeout=${LAB_CHECK_TIMEOUT:-300}"
  if [ -n "$keep" ]; then
    # Kept machine: serial console on a socket (root, empty password), still logged.
    serial=(-chardev "socket,id=ser0,path=$out/console.sock,server=on,wait=off,logfile=$out/serial.log"
            -serial chardev:ser0)
    append+=" lab.keep=1"
  else
    serial=(-serial "file:$out/serial.log")
    append+=" systemd.mask=serial-getty@ttyS0.service"
  fi
  rm -f -- "$out/results.txt" "$out/serial.log" "$out/qemu.pid"
  : > "$out/results.txt"
  # -nodefaults: no parallel port, floppy, VGA...: fewer drivers to probe under TCG.
  local -a qemu=(qemu-system-x86_64 "${acc[@]}" -machine q35 -smp 2 -m 2048 -nodefaults
    -display none -monitor none -no-reboot -nic none "${serial[@]}"
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$append"
    -drive "file=$img/root.raw,if=virtio,format=raw,cache=unsafe" -snapshot
    -device virtio-serial-pci -chardev "file,id=res,path=$out/results.txt"
    -device 'virtserialport,chardev=res,name=lab.results' -pidfile "$out/qemu.pid")
  if [ -z "$keep" ]; then
    # Hard timeout: a hung boot ends here, never hangs the lab.
    interruptible timeout -k 10 "$timeout" "${qemu[@]}" </dev/null >"$out/qemu.log" 2>&1
    return
  fi
  # Kept machine: its own session (outlives lab/run); return once the results are complete
  # or the time is up, and leave it running either way.
  setsid "${qemu[@]}" </dev/null >"$out/qemu.log" 2>&1 &
  local pid=$! end=$((SECONDS + timeout))
  until grep -q '^@@LAB done' "$out/results.txt"; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ $SECONDS -lt $end ] || return 1
    sleep 1
  done
}

# vm_is OUTDIR PID: PID is the qemu of OUTDIR: named qemu-system-x86 and its command line
# names OUTDIR's pid file (a stale pid file, after a crash or a reboot, names nobody).
vm_is() {
  local out=$1 pid=$2
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = qemu-system-x86 ] || return 1
  tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$out/qemu.pid"
}

# vm_stop OUTDIR: end a kept VM (TERM, then KILL after 10 s), checked by vm_is.
vm_stop() {
  local out pid='' start _
  out=$(strip_slashes "$1")
  [ -s "$out/qemu.pid" ] || return 0
  read -r pid < "$out/qemu.pid" || true
  if vm_is "$out" "$pid" && start=$(pid_start "$pid"); then
    signal_pid TERM "$pid" "$start" || true
    for _ in $(seq 40); do pid_is "$pid" "$start" || break; sleep 0.25; done
    signal_pid KILL "$pid" "$start" || true
  fi
  rm -f -- "$out/qemu.pid"
}
