# VM tier: the trixie kernel + rootfs under qemu, one boot for all VM scenarios of a run.

# vm_image ROOT OUTDIR: ext4 image of ROOT built by mkfs.ext4 -d (no loop mounts, no
# privileges beyond reading ROOT), plus the kernel and the small initramfs next to it.
vm_image() {
  local root=$1 out=$2 mb
  mkdir -p "$out"
  # The tree plus 1 GiB of room for what the scenarios write; the file is sparse anyway.
  mb=$(( $(du -sm "$root" | cut -f1) + 1024 ))
  rm -f "$out/root.raw"
  mkfs.ext4 -q -F -L labroot -d "$root" "$out/root.raw" "${mb}M" || return 1
  cp "$(ls "$root"/boot/vmlinuz-* | tail -1)" "$out/vmlinuz" &&
  cp "$(ls "$root"/boot/initrd.img-* | tail -1)" "$out/initrd.img"
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
  local pid=$! i
  for i in $(seq 40); do
    grep -qa 'Run /bin/true as init process' "$log" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
  done
  if grep -qa 'Run /bin/true as init process' "$log" 2>/dev/null; then echo kvm; else echo tcg; fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  return 0
}

# vm_boot IMGDIR OUTDIR ACCEL TIMEOUT [KEEP]: boot, let lab-runner.service run the scenarios,
# return when the guest powered off (or, with KEEP, when its results are complete).
# Results: OUTDIR/results.txt (virtio-serial), OUTDIR/serial.log (console).
vm_boot() {
  local img=$1 out=$2 accel=$3 timeout=$4 keep=${5:-} append serial
  local -a acc
  case $accel in
    kvm) acc=(-accel kvm -cpu host) ;;
    *)   acc=(-accel tcg,thread=multi -cpu max) ;;
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
  rm -f "$out/results.txt" "$out/serial.log" "$out/qemu.pid"
  : > "$out/results.txt"
  # -nodefaults: no parallel port, floppy, VGA...: fewer drivers to probe under TCG.
  local -a qemu=(qemu-system-x86_64 "${acc[@]}" -machine q35 -smp 2 -m 2048 -nodefaults
    -display none -monitor none -no-reboot -nic none "${serial[@]}"
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$append"
    -drive "file=$img/root.raw,if=virtio,format=raw,cache=unsafe" -snapshot
    -device virtio-serial-pci -chardev "file,id=res,path=$out/results.txt"
    -device virtserialport,chardev=res,name=lab.results -pidfile "$out/qemu.pid")
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
    kill -0 $pid 2>/dev/null || return 1
    [ $SECONDS -lt $end ] || return 1
    sleep 1
  done
}

# vm_stop OUTDIR: end a kept VM.
vm_stop() {
  local out=$1
  [ -s "$out/qemu.pid" ] && kill "$(cat "$out/qemu.pid")" 2>/dev/null
  rm -f "$out/qemu.pid"
}
