# Secure Boot enforcing with the lab's own PK/KEK/db (virt-fw-vars into OVMF's variable store):
# the UKI signed by db boots (through systemd-boot, itself signed by db); an unsigned UKI and
# one signed by another key are refused by the firmware when it is asked to boot them (they
# head BootOrder on the boots after the first), and `bbhv boot verify` refuses both too.
TIER=uefi
DESCRIPTION="Secure Boot enforcing (own PK/KEK/db): the db-signed UKI boots; unsigned and foreign-signed UKIs are refused by the firmware and by bbhv boot verify"

check() {
  local b="$LAB_DATA/build.log" s="$LAB_DATA/serial.log" refused
  log "bbhv boot verify (build.log)"
  grep -A1 -a '^\$ bbhv boot verify' "$b" | grep -a -e '^\$' -e signature -e 'rc='
  grep -a -A12 '^\$ bbhv boot verify uki/a-1.efi' "$b" | grep -q '^\[rc=0\]' ||
    fail "bbhv boot verify does not accept the db-signed UKI"
  for u in foreign unsigned; do
    grep -a -A12 "^\\\$ bbhv boot verify uki/$u.efi" "$b" | grep -q '^\[rc=1\]' ||
      fail "bbhv boot verify does not refuse the $u UKI"
  done
  log "first boot"
  boot_line 1 || fail "the guest never booted (no report of boot 1; see uefi.serial.log)"
  expect_eq "Secure Boot at boot 1" "$(boot_field 1 sb)" 1
  expect_eq "the UKI booted first" "$(boot_field 1 uki)" a-1
  expect_eq "LoaderEntrySelected at boot 1" "$(selected 1)" bbhv-a-1.efi
  expect_eq "bbhv boot status: secure_boot" "$(status_json 1 | jq -r .firmware.secure_boot)" true
  expect_eq "bbhv boot status: setup_mode" "$(status_json 1 | jq -r .firmware.setup_mode)" false
  log "the firmware's refusals (serial console)"
  grep -a -E 'lab-(unsigned|foreign)' "$s" | sort | uniq -c
  for u in unsigned foreign; do
    refused=$(grep -a -c -E "failed to load Boot[0-9A-F]{4} \"lab-$u\".*(Access Denied|Security Violation)" "$s")
    echo "check: firmware refusals of lab-$u: $refused"
    [ "$refused" -ge 1 ] || fail "no refusal of the $u UKI by the firmware on the serial console"
  done
  grep -a -q -E "^@@BOOT .* uki=(unsigned|foreign) " "$LAB_DATA/results.txt" &&
    fail "an unsigned or foreign-signed UKI booted"
  grep -a -q -E 'lab\.uki=(unsigned|foreign)' "$s" && fail "the kernel of a refused UKI ran"
  return 0
}
