# A/B bless, through git-ops: after the fallback, `bbhv sync` applies a signed commit whose
# hosts/labuefi.json pins UKI b-3 (version and sha256; images/host-uki.json says where it
# comes from, its SHA256SUMS signed by a key of trust.image_signers). The sync verifies it
# (digest, image signature, Secure Boot signature against boot.signing_cert) before the flip
# and stages it into slot b after the apply (replacing the bad one; slot a stays).
# systemd-boot boots it on trial (bbhv-b-3+3.efi -> +2-1), it reaches boot-complete.target
# and systemd-bless-boot renames it to bbhv-b-3.efi; the next boot boots it again as the
# default, slot a is still the fallback, and a re-sync of a commit pinning the same UKI
# stages nothing. Then a sync of a commit pinning b-4 stages it into slot a (bbhv-a-4+3.efi),
# and `bbhv rollback` to the generation pinning b-3 withdraws it before it ever boots:
# bootctl shows b-3 as the default again. The commits are made and signed on the host
# (lab/lib/gitops.sh).
TIER=uefi
DESCRIPTION="bbhv sync of a signed commit pinning UKI b-3 stages slot b; it boots on trial, is blessed by systemd-bless-boot, and is the default at the next boot; slot a stays; a re-sync stages nothing; b-4 staged by a sync is withdrawn by bbhv rollback"

# shellcheck source=../lib/gitops.sh
. "$LAB_DIR/lib/gitops.sh"

# The repository (/srv/tenants.git, followed over file://), the keys, the served UKI and its
# signed SHA256SUMS; the commits' ids for boot-runner.sh in /var/lib/lab-boot/refs.
prepare() {
  local etc=$ROOT/etc/bitbuilder boot=$ROOT/var/lib/lab-boot sha sha4
  local serve=$ROOT/var/lib/lab-boot/serve work=$LAB_DATA/work
  must_be_under "$serve" "$LAB_VAR" && must_be_under "$work" "$LAB_VAR" || return 1
  [ -f "$boot/b-3.efi" ] && [ -f "$boot/b-4.efi" ] || { echo "no $boot/b-3.efi or b-4.efi" >&2; return 1; }
  mkdir -p "$serve" "$work" "$boot/refs" || return 1
  cp "$boot/b-3.efi" "$boot/b-4.efi" "$serve/" || return 1
  sha=$(sha256sum "$serve/b-3.efi" | cut -c1-64) sha4=$(sha256sum "$serve/b-4.efi" | cut -c1-64)
  ssh-keygen -q -t ed25519 -N '' -C lab-trusted -f "$LAB_DATA/trusted" || return 1
  ssh-keygen -q -t ed25519 -N '' -C lab-images -f "$LAB_DATA/images" || return 1
  printf 'ops@lab %s\n' "$(cat "$LAB_DATA/trusted.pub")" > "$etc/allowed_signers" || return 1
  printf 'images@lab %s\n' "$(cat "$LAB_DATA/images.pub")" > "$etc/image_signers" || return 1
  printf '%s *b-3.efi\n%s *b-4.efi\n' "$sha" "$sha4" > "$serve/SHA256SUMS" || return 1
  ssh-keygen -q -Y sign -n bbhv-image -f "$LAB_DATA/images" "$serve/SHA256SUMS" </dev/null || return 1
  # host.toml: uefi.sh's [boot], and what the sync needs. hostname first (a top-level key).
  { echo 'hostname = "labuefi"'; cat "$etc/host.toml"; cat <<'EOF'
[sync]
remote = "file:///srv/tenants.git"
branch = "main"
health_deadline = "60s"
[trust]
allowed_signers = "/etc/bitbuilder/allowed_signers"
image_signers = "/etc/bitbuilder/image_signers"
EOF
  } > "$etc/host.toml.new" && mv "$etc/host.toml.new" "$etc/host.toml" || return 1
  git -C "$work" init -q -b main &&
    git -C "$work" config user.name "Lab Ops" && git -C "$work" config user.email ops@lab &&
    git -C "$work" config gpg.format ssh && git -C "$work" config user.signingkey "$LAB_DATA/trusted" &&
    echo "lab host" > "$work/README" || return 1
  gitops_commit empty || return 1
  mkdir -p "$work/images" "$work/hosts" || return 1
  printf '{ "schemaVersion": 1, "format": "uki", "source": "file:///var/lib/lab-boot/serve/b-3.efi", "sha256": "%s" }\n' \
    "$sha" > "$work/images/host-uki.json" || return 1
  printf '{ "schemaVersion": 1, "uki": { "image": "host-uki", "version": "3", "sha256": "%s" } }\n' \
    "$sha" > "$work/hosts/labuefi.json" || return 1
  gitops_commit pin-b3 || return 1
  echo "lab host, again" > "$work/README" && gitops_commit pin-b3-again || return 1
  printf '{ "schemaVersion": 1, "format": "uki", "source": "file:///var/lib/lab-boot/serve/b-4.efi", "sha256": "%s" }\n' \
    "$sha4" > "$work/images/host-uki.json" || return 1
  printf '{ "schemaVersion": 1, "uki": { "image": "host-uki", "version": "4", "sha256": "%s" } }\n' \
    "$sha4" > "$work/hosts/labuefi.json" || return 1
  gitops_commit pin-b4 || return 1
  gitops_publish "$ROOT" empty || return 1
  cp "$LAB_DATA/refs/pin-b3" "$LAB_DATA/refs/pin-b3-again" "$LAB_DATA/refs/pin-b4" "$boot/refs/"
}

check() {
  local r="$LAB_DATA/results.txt"
  grep -a -q '^@@STEP 2 synced b-3' "$r" || fail "bbhv sync of the commit pinning b-3 failed (uefi.results.log)"
  grep -a 'staged UKI bbhv-b-3+3 into slot b' "$r" ||
    fail "the sync did not stage UKI b-3 into slot b"
  expect_eq "the ESP after the sync" \
    "$(sed -n '/^@@STEP 2 synced b-3/,/^@@REBOOT 2/p' "$r" | grep -a '^bbhv-.*\.efi$' | tr '\n' ' ')" \
    "bbhv-a-1.efi bbhv-b-3+3.efi "
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
  # A new commit pinning the same UKI: applied, nothing staged, the slots as they were.
  grep -a '^@@RESYNC 4 ' "$r"
  expect_eq "re-sync of the same pin: exit status and slot files" \
    "$(sed -n 's/^@@RESYNC 4 //p' "$r" | sed 's/ *$//')" "0 bbhv-a-1.efi bbhv-b-3.efi"
  [ "$(grep -a -c 'staged UKI bbhv-b-3' "$r")" = 1 ] || fail "the re-sync staged the UKI again"
  # b-4: staged into slot a by a sync (the running b-3 stays), withdrawn by the rollback.
  grep -a '^@@STAGE4 4 ' "$r"
  expect_eq "sync of the pin on b-4: exit status and slot files" \
    "$(sed -n 's/^@@STAGE4 4 //p' "$r" | sed 's/ *$//')" "0 bbhv-a-4+3.efi bbhv-b-3.efi"
  grep -a '^@@WITHDRAW 4 ' "$r"
  expect_eq "bbhv rollback to the pin on b-3: exit status and slot files" \
    "$(sed -n 's/^@@WITHDRAW 4 //p' "$r" | sed 's/ *$//')" "0 bbhv-b-3.efi"
  grep -a -q 'withdrew .*bbhv-a-4+3.efi\|bbhv-a-4+3.efi.*withdrawn' "$r" ||
    fail "the rollback did not say it withdrew bbhv-a-4+3.efi"
  # systemd's view after the withdrawal: b-3 is the default (what the next boot boots).
  sed -n '/^@@WITHDRAW 4 /,$p' "$r" | grep -a -B2 -E '^ +id: bbhv-b-3\.efi$' | tee /dev/stderr |
    grep -q '(default)' || fail "bootctl list does not show bbhv-b-3.efi as the default after the withdrawal"
  grep -a -q '^@@DONE 4' "$r" || fail "the sequence did not finish at boot 4"
  return 0
}
