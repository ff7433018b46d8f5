#!/bin/bash
# Runs inside the UEFI guest at every full boot (lab-boot-runner.service, pulled in by the lab
# UKIs' command line) and drives the boot-* scenarios through one qemu process that reboots:
#   phase 1 (slot a booted under Secure Boot): add firmware boot entries for the unsigned and
#            the foreign-signed UKI ahead of systemd-boot (the firmware must refuse both on
#            every boot), stage the bad UKI into slot b, reboot
#   (slot b panics three times; systemd-boot counts the tries and falls back to a)
#   phase 2 (slot a again): drop the firmware entries, stage a good UKI into slot b (through
#            `bbhv sync` of a signed commit pinning it, when boot-ab-bless prepared one), reboot
#   phase 3 (slot b on trial): systemd-bless-boot blesses it at boot-complete.target; reboot
#   phase 4 (slot b, blessed, the default): a re-sync pinning the same UKI stages nothing; a
#            sync pinning b-4 stages it into slot a, `bbhv rollback` withdraws it; power off
# It reports facts on the virtio-serial port lab.results; the scenarios' checks judge them on
# the host (lab/lib/uefi.sh). No errexit: every phase must end in a reboot or a poweroff.
set -uo pipefail
port=$(grep -lx lab.results /sys/class/virtio-ports/*/name 2>/dev/null | head -1)
PORT=/dev/console; [ -n "$port" ] && PORT=/dev/$(basename "$(dirname "$port")")
exec >> "$PORT" 2>&1
arg() { sed -n "s/.*\<lab\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
VARS=/sys/firmware/efi/efivars
LOADER=4a67b082-0a4c-41cf-b6c7-440b29bb8c4f GLOBAL=8be4df61-93ca-11d2-aa0d-00e098032b8c
S=/var/lib/lab-boot
mkdir -p "$S"
n=$(( $(cat "$S/boots" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$S/boots"
phase=$(cat "$S/phase" 2>/dev/null || echo 1)
# efivarfs: 4 bytes of attributes, then UTF-16 (ASCII here: drop the NULs). Read through cat:
# tail -c +5 on the file itself seeks, which efivarfs does not do.
# shellcheck disable=SC2002
selected=$(cat "$VARS/LoaderEntrySelected-$LOADER" 2>/dev/null | tail -c +5 | tr -d '\0')
sb=$(od -An -tu1 -j4 -N1 "$VARS/SecureBoot-$GLOBAL" 2>/dev/null | tr -d ' ')
uki=$(arg uki)
echo "@@BOOT $n phase=$phase uki=$uki selected=$selected sb=${sb:-none} t=$(date +%s) uptime=$(cut -d' ' -f1 /proc/uptime)"

# Only the bless boot waits for the whole boot (systemd-bless-boot runs at its end); the
# others need no more than basic.target (the ESP is mounted by then), which saves ~10 s of
# TCG time per boot.
if [ "$phase" = 3 ]; then
  state=$(timeout "$(arg boot_timeout)" systemctl is-system-running --wait)
  systemctl --failed --no-legend --no-pager
  systemd-analyze time 2>&1 | head -2
else
  state=$(systemctl is-system-running)
fi
echo "@@STATE $n ${state:-timeout} $(cut -d' ' -f1 /proc/uptime)"
# The slot files on the ESP, on one line.
esp_files() { find /efi/EFI/Linux -maxdepth 1 -name 'bbhv-*.efi' -printf '%f\n' | sort | tr '\n' ' '; }
status() { echo "@@STATUS $n $(bbhv boot status --json | tr -d '\n')"; bbhv boot status; }
step() { echo "@@STEP $n $*"; }
finish() { echo "@@DONE $n"; sync; systemctl poweroff --no-block; exit 0; }
next() { echo "$1" > "$S/phase"; sync; echo "@@REBOOT $n"; systemctl reboot --no-block; exit 0; }

case $uki in a-1|b-3) ;; *) step "unexpected UKI booted: '$uki'"; status; finish ;; esac
status
case $phase in
  1)
    bootctl status --no-pager 2>&1 | sed -n '1,12p'
    esp=$(findmnt -no SOURCE /efi)                       # /dev/vdb1
    disk=/dev/$(lsblk -no PKNAME "$esp") part=${esp##*[!0-9]}
    # efibootmgr -c puts the new entry first in BootOrder: unsigned, foreign, then the rest.
    efibootmgr -q -c -d "$disk" -p "$part" -L lab-foreign -l '\EFI\lab\foreign.efi'
    efibootmgr -q -c -d "$disk" -p "$part" -L lab-unsigned -l '\EFI\lab\unsigned.efi'
    efibootmgr
    step "stage b-2"
    if bbhv boot stage --uki "$S/b-2.efi" --version 2; then step "staged b-2"; else step "stage b-2 failed: $?"; fi
    ls /efi/EFI/Linux
    next 2 ;;
  2)
    for b in $(efibootmgr | sed -n 's/^Boot\([0-9A-F]\{4\}\)\*\{0,1\} lab-.*/\1/p'); do
      efibootmgr -q -b "$b" -B
    done
    efibootmgr
    # Through git-ops when boot-ab-bless prepared its repository (a signed commit pinning
    # UKI b-3 in hosts/labuefi.json): `bbhv sync` verifies and stages it. Without it, by hand.
    if [ -f "$S/refs/pin-b3" ]; then
      git -C /srv/tenants.git update-ref refs/heads/main "$(cat "$S/refs/pin-b3")"
      step "sync b-3"
      bbhv sync; rc=$?
      if [ $rc = 0 ]; then step "synced b-3"; else step "sync b-3 failed: $rc"; fi
      bbhv history | tail -3
    else
      step "stage b-3"
      if bbhv boot stage --uki "$S/b-3.efi" --version 3; then step "staged b-3"; else step "stage b-3 failed: $?"; fi
    fi
    ls /efi/EFI/Linux
    next 3 ;;
  3)
    echo "@@BLESS $n $(systemctl show -P Result systemd-bless-boot.service) $(systemctl is-active boot-complete.target)"
    journalctl -b --no-pager -o cat -u systemd-bless-boot.service
    bootctl list --no-pager 2>&1 | head -30
    status
    next 4 ;;
  *)
    bootctl list --no-pager 2>&1 | head -30
    # Idempotent: a new commit that pins the same UKI applies and stages nothing.
    if [ -f "$S/refs/pin-b3-again" ]; then
      git -C /srv/tenants.git update-ref refs/heads/main "$(cat "$S/refs/pin-b3-again")"
      bbhv sync; rc=$?
      echo "@@RESYNC $n $rc $(esp_files)"
    fi
    # A UKI staged, then left by a rollback before it ever booted, is withdrawn.
    if [ -f "$S/refs/pin-b4" ]; then
      git -C /srv/tenants.git update-ref refs/heads/main "$(cat "$S/refs/pin-b4")"
      bbhv sync; rc=$?
      echo "@@STAGE4 $n $rc $(esp_files)"
      bbhv rollback; rc=$?
      echo "@@WITHDRAW $n $rc $(esp_files)"
      bootctl list --no-pager 2>&1 | head -20
      bbhv history | tail -3
    fi
    finish ;;
esac
