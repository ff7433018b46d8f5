# A/B fallback: systemd-boot boots slot a's signed UKI from the GPT disk's ESP. `bbhv boot
# stage` puts a new UKI into slot b as bbhv-b-2+3.efi; it never reaches boot-complete.target
# (its kernel finds no init and panics, panic=-1 reboots at once), systemd-boot counts down
# its three tries (+2-1, +1-2, +0-3) and then boots slot a again by itself.
TIER=uefi
DESCRIPTION="slot b (staged with +3) never reaches boot-complete.target: tried three times, then systemd-boot falls back to slot a by itself"

check() {
  local r="$LAB_DATA/results.txt" s="$LAB_DATA/serial.log" tries
  boot_line 1 || fail "the guest never booted (no report of boot 1)"
  expect_eq "boot 1 booted" "$(selected 1)" bbhv-a-1.efi
  grep -a -q '^@@STEP 1 staged b-2' "$r" || fail "bbhv boot stage of b-2 failed (uefi.results.log)"
  grep -a -q 'staged /efi/EFI/Linux/bbhv-b-2+3.efi (slot b' "$r" || fail "b-2 was not staged as bbhv-b-2+3.efi"
  log "slot b's tries (kernel command lines on the serial console)"
  grep -a -E 'Kernel panic|Command line:.*lab\.uki=b-2' "$s" | cut -c1-160
  tries=$(grep -a -c 'Command line:.*lab\.uki=b-2' "$s")
  expect_eq "boots of slot b's bad UKI" "$tries" 3
  boot_line 2 || fail "no boot after slot b's tries (the machine did not fall back)"
  expect_eq "boot 2 (after the tries) booted" "$(boot_field 2 uki)" a-1
  expect_eq "LoaderEntrySelected at boot 2" "$(selected 2)" bbhv-a-1.efi
  expect_eq "slot files at boot 2" "$(files 2)" "bbhv-a-1.efi bbhv-b-2+0-3.efi"
  expect_eq "slot b's state" "$(slot_field 2 bbhv-b-2 state)" bad
  expect_eq "slot a is the default" "$(slot_field 2 bbhv-a-1 default)" true
  return 0
}
