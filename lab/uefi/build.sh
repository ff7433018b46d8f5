#!/bin/bash
# Runs inside the trixie tree (systemd-nspawn, lab/lib/uefi.sh) with the build directory at
# /lab-build: the lab's own Secure Boot keys, the signed UKIs (with `bbhv boot build-uki`),
# an ESP made by `bbhv boot install`, a GPT disk holding it (sfdisk + mkfs.vfat --offset +
# mcopy: no loop devices) and an OVMF variable store with the keys enrolled (virt-fw-vars).
# The private keys stay in /lab-build; only the db certificate goes into the guest.
set -euo pipefail
B=/lab-build
[ -d "$B" ] || { echo "build.sh: no $B" >&2; exit 1; }
cd "$B"
t() { echo "=== $*"; }

t keys
mkdir -p keys
for k in PK KEK db other; do
  openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=bitbuilder lab $k/" \
    -keyout "keys/$k.key" -out "keys/$k.crt" 2>/dev/null
done
GUID=$(cat /proc/sys/kernel/random/uuid)
cat > host.toml <<EOT
[boot]
esp = "$B/esp"
signing_key = "$B/keys/db.key"
signing_cert = "$B/keys/db.crt"
EOT
export BITBUILDER_HOST_CONFIG=$B/host.toml

t UKIs
kernels=(/boot/vmlinuz-*) initrds=(/boot/initrd.img-*)
K=${kernels[-1]} I=${initrds[-1]}
if [ ! -e "$K" ] || [ ! -e "$I" ]; then echo "no kernel or initramfs in /boot" >&2; exit 1; fi
# The guest's command line is in the UKI (under Secure Boot systemd-boot does not let it be
# edited). lab.uki= names the UKI, so the runner knows what booted.
GOOD="root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=false systemd.firstboot=off"
GOOD+=" systemd.wants=lab-boot-runner.service systemd.mask=serial-getty@ttyS0.service"
GOOD+=" lab.boot_timeout=${LAB_BOOT_TIMEOUT:-300}"
# Slot B's bad UKI: the kernel finds no init and no root, panics and (panic=-1) reboots at once:
# it never reaches boot-complete.target, and a try costs seconds, not a whole boot.
BAD="console=ttyS0 panic=-1 rdinit=/lab-no-such-init root=/dev/lab-none lab.uki=b-2"
mkdir -p uki
build() { bbhv boot build-uki --kernel "$K" --initrd "$I" "$@"; }
build --version 1 --cmdline "$GOOD lab.uki=a-1" -o uki/a-1.efi
build --version 2 --cmdline "$BAD" -o uki/b-2.efi
build --version 3 --cmdline "$GOOD lab.uki=b-3" -o uki/b-3.efi
# Staged by a sync and withdrawn by the rollback that follows: it never boots.
build --version 4 --cmdline "$GOOD lab.uki=b-4" -o uki/b-4.efi
build --version 9 --cmdline "$GOOD lab.uki=unsigned" -o uki/unsigned.efi --unsigned
build --version 9 --cmdline "$GOOD lab.uki=foreign" -o uki/foreign.efi \
  --key keys/other.key --cert keys/other.crt
# What `bbhv boot verify` says of each (the foreign and unsigned ones must fail).
for u in a-1 foreign unsigned; do
  echo "\$ bbhv boot verify uki/$u.efi"
  bbhv boot verify "uki/$u.efi" && echo "[rc=0]" || echo "[rc=$?]"
done

t ESP
rm -rf esp; mkdir esp
bbhv boot install --esp "$B/esp" --uki uki/a-1.efi --version 1
# The two that must be refused, where the firmware can be asked to boot them directly.
mkdir -p esp/EFI/lab
cp uki/unsigned.efi uki/foreign.efi esp/EFI/lab/
find esp -type f | sort

t disk
# GPT, one ESP partition at 1 MiB with a fixed PARTUUID (the guest's fstab mounts it at /efi).
rm -f disk.raw
truncate -s 320M disk.raw
sfdisk -q disk.raw <<EOT
label: gpt
start=2048, size=612352, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=${LAB_ESP_UUID:?}, name="esp"
EOT
mkfs.vfat -F 32 -n ESP --offset 2048 disk.raw $((612352 / 2)) >/dev/null
mcopy -s -Q -i disk.raw@@1M esp/* ::/
mdir -/ -i disk.raw@@1M ::/EFI | head -20

t firmware
cp /usr/share/OVMF/OVMF_CODE_4M.secboot.fd code.fd
virt-fw-vars -i /usr/share/OVMF/OVMF_VARS_4M.fd -o vars.fd \
  --set-pk "$GUID" keys/PK.crt --add-kek "$GUID" keys/KEK.crt --add-db "$GUID" keys/db.crt --sb
virt-fw-vars -i vars.fd -p 2>/dev/null | grep -E "^ *(PK|KEK|db|SecureBootEnable)|CN=" | head -20 || true
