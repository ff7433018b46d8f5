# A/B bless: after the fallback, `bbhv boot stage` puts a good UKI into slot b (replacing the
# bad one; slot a stays). systemd-boot boots it on trial (bbhv-b-3+3.efi -> +2-1), it reaches
# boot-complete.target and systemd-bless-boot renames it to bbhv-b-3.efi; the next boot boots
# it again as the default, and slot a is still there as the fallback.
TIER=uefi
DESCRIPTION="a good slot b is booted on trial, blessed by systemd-bless-boot at boot-complete.target, and is the default at the next boot; slot a stays"

check() {
  local r="$LAB_DATA/results.txt"
  grep -a -q '^@@STEP 2 staged b-3' "$r" || fail "bbhv boot stage of b-3 failed (uefi.results.log)"
  grep -a -q 'removed bbhv-b-2+0-3.efi (slot b)' "$r" || fail "the bad slot b was not replaced"
  boot_line 3 || fail "no boot after staging b-3"
  expect_eq "boot 3 booted" "$(boot_field 3 uki)" b-3
  expect_eq "LoaderEntrySelected at boot 3" "$(selected 3)" bbhv-b-3.efi
  expect_eq "boot 3 was counted (LoaderBootCountPath)" \
    "$(status_json 3 | jq -r .firmware.boot_count_path)" '\EFI\Linux\bbhv-b-3+2-1.efi'
  grep -a "^@@BLESS 3 " "$r"
  expect_eq "systemd-bless-boot.service result, boot-complete.target" \
    "$(sed -n 's/^@@BLESS 3 //p' "$r")" "success active"
  expect_eq "slot files after the bless" "$(files 3)" "bbhv-a-1.efi bbhv-b-3.efi"
  boot_line 4 || fail "no boot after the bless"
  expect_eq "boot 4 booted" "$(selected 4)" bbhv-b-3.efi
  expect_eq "slot b at boot 4: state" "$(slot_field 4 bbhv-b-3 state)" good
  expect_eq "slot b at boot 4: default" "$(slot_field 4 bbhv-b-3 default)" true
  expect_eq "slot a stays" "$(slot_field 4 bbhv-a-1 state)" good
  # systemd's own view (bootctl list at boot 4) agrees: b-3 is the default and was selected.
  sed -n '/^@@BOOT 4 /,$p' "$r" | grep -a -B2 -E '^ +id: bbhv-b-3\.efi$' | tee /dev/stderr |
    grep -q '(default) (selected)$' || fail "bootctl list does not show bbhv-b-3.efi as default and selected"
  grep -a -q '^@@DONE 4' "$r" || fail "the sequence did not finish at boot 4"
  return 0
}
