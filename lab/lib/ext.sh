# shellcheck shell=bash
# The fixture of the extension scenarios (sysext-*, image-pull-verify). Two halves:
#
# Host side (a scenario's prepare; sourced after common.sh and tenants.sh): ext_fixture ROOT
# builds, once per guest tree, with the project's own `bbhv ext build`:
#   /srv/bbhv-lab/serve/     hello_1.raw, hello_2.raw (sysext "hello": /usr/bin/bbhv-hello
#                            prints hello-v1 / hello-v2), SHA256SUMS + SHA256SUMS.sig (signed
#                            by the trusted lab key); served by file:// and by busybox httpd
#   /srv/bbhv-lab/flipped/   hello_3.raw signed, then one byte flipped
#   /srv/bbhv-lab/stranger/  hello_4.raw signed by a key the host does not trust
#   /srv/bbhv-lab/unsigned/  hello_5.raw with SHA256SUMS and no signature
#   /srv/bbhv-lab/checkouts/<name>/  images/hello.json + hosts/labguest.json pinning "hello"
#   /etc/bitbuilder/image_signers    the lab key (trust.image_signers' default path)
#
# The same checkouts are also signed commits (ext_repo): each is one commit whose tree is the
# checkout, signed on the host by the lab's "ops" key (/etc/bitbuilder/allowed_signers), in
# /srv/tenants.git, the remote of the example host.toml (file://); their ids are in
# /srv/bbhv-lab/refs/<name>. "empty" pins nothing.
#
# Guest side (a check; lab/run installs this file as /usr/local/lib/lab/ext.sh):
# ext_git_sync NAME moves main to the commit of checkout NAME (as a force-push would) and runs
# the real `bbhv sync --allow-rollback` (the lab moves main back and forth between unrelated
# checkouts); ext_git_rollback is `bbhv rollback` (offline). The sysext-* scenarios use these.
# ext_sync CHECKOUT is the older stand-in, kept for image-pull-verify (it lays a checkout
# over the current generation, keeping the tenants other VM scenarios applied): fetch what the
# checkout pulls, verify it, flip `current`, `bbhv ext apply`, `bbhv reload`.

EXT_LAB=/srv/bbhv-lab
EXT_HTTP=127.0.0.1:8099
EXT_HOST=labguest

# --- host side -----------------------------------------------------------------------------

# ext_checkout ROOT NAME URL SHA256: a checkout pinning sysext "hello" as image URL/SHA256.
ext_checkout() {
  local dir=$1$EXT_LAB/checkouts/$2
  must_be_under "$dir" "$LAB_VAR" || return 1
  mkdir -p "$dir/images" "$dir/hosts" || return 1
  printf '{ "schemaVersion": 1, "source": "%s", "sha256": "%s" }\n' "$3" "$4" > "$dir/images/hello.json"
  printf '{ "schemaVersion": 1, "sysexts": ["hello"] }\n' > "$dir/hosts/$EXT_HOST.json"
}

# ext_build ROOT VERSION DIR [KEY]: sysext hello printing hello-vVERSION, as DIR/hello_VERSION.raw;
# prints its sha256.
ext_build() {
  local root=$1 v=$2 out=$1$EXT_LAB/$3 key=${4:-} tree
  tree=${root%/*}/ext-build/tree-$v
  must_be_under "$tree" "$LAB_VAR" || return 1
  mkdir -p "$tree/usr/bin" "$out" || return 1
  printf '#!/bin/sh\necho hello-v%s\n' "$v" > "$tree/usr/bin/bbhv-hello" && chmod 755 "$tree/usr/bin/bbhv-hello"
  # shellcheck disable=SC2046 # no key: no --sign-key (unsigned on purpose)
  SOURCE_DATE_EPOCH=1700000000 "$root/usr/bin/bbhv" ext build "$tree" --name hello \
    --image-version "$v" --output "$out/hello_$v.raw" $([ -n "$key" ] && echo --sign-key "$key") >&2 || return 1
  sha256sum "$out/hello_$v.raw" | cut -c1-64
}

ext_fixture() {
  local root=$1 keys s1 s2 s3 s4 s5
  [ -e "$root$EXT_LAB/.ready" ] && return 0
  keys=${root%/*}/ext-build/keys
  must_be_under "$keys" "$LAB_VAR" || return 1
  mkdir -p "$keys" "$root/etc/bitbuilder" || return 1
  rm -f "$keys/lab" "$keys/lab.pub" "$keys/stranger" "$keys/stranger.pub"
  ssh-keygen -q -t ed25519 -N '' -C lab -f "$keys/lab" || return 1
  ssh-keygen -q -t ed25519 -N '' -C stranger -f "$keys/stranger" || return 1
  echo "lab@bitbuilder $(cat "$keys/lab.pub")" > "$root/etc/bitbuilder/image_signers"
  s1=$(ext_build "$root" 1 serve "$keys/lab") && s2=$(ext_build "$root" 2 serve "$keys/lab") &&
    s3=$(ext_build "$root" 3 flipped "$keys/lab") && s4=$(ext_build "$root" 4 stranger "$keys/stranger") &&
    s5=$(ext_build "$root" 5 unsigned) || return 1
  sha256sum "$root$EXT_LAB/unsigned/hello_5.raw" | sed 's/  / */;s| \*.*/| *|' > "$root$EXT_LAB/unsigned/SHA256SUMS"
  # One flipped byte, after signing: the file no longer has the signed digest.
  printf '\x01' | dd of="$root$EXT_LAB/flipped/hello_3.raw" bs=1 seek=300 conv=notrunc status=none || return 1
  local f=file://$EXT_LAB h=http://$EXT_HTTP
  ext_checkout "$root" v1 "$f/serve/hello_1.raw" "$s1" && ext_checkout "$root" v2 "$f/serve/hello_2.raw" "$s2" &&
    ext_checkout "$root" v1-http "$h/serve/hello_1.raw" "$s1" && ext_checkout "$root" v2-http "$h/serve/hello_2.raw" "$s2" &&
    ext_checkout "$root" flipped "$f/flipped/hello_3.raw" "$s3" &&
    ext_checkout "$root" stranger-http "$h/stranger/hello_4.raw" "$s4" &&
    ext_checkout "$root" unsigned "$f/unsigned/hello_5.raw" "$s5" &&
    ext_checkout "$root" wrong-digest-http "$h/serve/hello_2.raw" "$s1" || return 1
  ext_workload "$root" "$keys/lab" || return 1
  ext_repo "$root" || return 1
  touch "$root$EXT_LAB/.ready"
}

# ext_repo ROOT: the signed commits of the checkouts (see the top) and host.toml (the
# example's, which follows file:///srv/tenants.git, unless one is there already).
ext_repo() {
  local root=$1 work=${1%/*}/ext-build/repo keys=${1%/*}/ext-build/keys name bare=$1/srv/tenants.git
  must_be_under "$work" "$LAB_VAR" && must_be_under "$bare" "$LAB_VAR" || return 1
  safe_rm "$work" && safe_rm "$bare" || return 1
  rm -f "$keys/ops" "$keys/ops.pub"
  ssh-keygen -q -t ed25519 -N '' -C ops -f "$keys/ops" || return 1
  install_host_config "$root" || return 1
  printf 'ops@lab %s\n' "$(cat "$keys/ops.pub")" > "$root/etc/bitbuilder/allowed_signers" || return 1
  mkdir -p "$work" "$root$EXT_LAB/refs" "$root$EXT_LAB/checkouts/empty" || return 1
  git -C "$work" init -q -b main && git -C "$work" config user.name "Lab Ops" &&
    git -C "$work" config user.email ops@lab && git -C "$work" config gpg.format ssh &&
    git -C "$work" config user.signingkey "$keys/ops" || return 1
  for name in empty v1 v2 v1-http v2-http flipped stranger-http unsigned; do
    git -C "$work" rm -q -r --ignore-unmatch . >/dev/null || return 1
    echo "lab extensions: $name" > "$work/README"
    cp -a "$root$EXT_LAB/checkouts/$name/." "$work/" || return 1
    git -C "$work" add -A && git -C "$work" commit -q -S -m "$name" &&
      git -C "$work" rev-parse HEAD > "$root$EXT_LAB/refs/$name" || return 1
  done
  # refs/lab/last keeps every commit reachable while main moves between them.
  git init -q --bare "$bare" && git -C "$work" push -q "$bare" main main:refs/lab/last &&
    git -C "$bare" update-ref refs/heads/main "$(cat "$root$EXT_LAB/refs/empty")"
}

# ext_workload ROOT KEY: a container image (busybox, squashfs) served at serve-bb/, signed
# with KEY, and two checkouts: "workload" (tenant lab-pull, whose container c runs on the
# pulled image) and "workload-gone" (removes them again).
ext_workload() {
  local root=$1 key=$2 serve=$1$EXT_LAB/serve-bb dir sha
  busybox_image "$root" lab-pull-tree || return 1
  mkdir -p "$serve" || return 1
  mksquashfs "$root/var/lib/bitbuilder/images/lab-pull-tree" "$serve/busybox_1.raw" \
    -quiet -noappend -all-root -reproducible -mkfs-time 0 -all-time 0 >/dev/null || return 1
  safe_rm "$root/var/lib/bitbuilder/images/lab-pull-tree" || return 1
  sha=$(sha256sum "$serve/busybox_1.raw" | cut -c1-64)
  echo "$sha *busybox_1.raw" > "$serve/SHA256SUMS"
  ssh-keygen -q -Y sign -n bbhv-image -f "$key" "$serve/SHA256SUMS" </dev/null || return 1
  dir=$root$EXT_LAB/checkouts/workload
  mkdir -p "$dir/images" "$dir/tenants/lab-pull" || return 1
  printf '{ "schemaVersion": 1, "format": "squashfs", "source": "http://%s/serve-bb/busybox_1.raw", "sha256": "%s" }\n' \
    "$EXT_HTTP" "$sha" > "$dir/images/pulled-busybox.json"
  cat > "$dir/tenants/lab-pull/metadata.json" <<'EOJ'
{
  "schemaVersion": 1, "id": "lab-pull", "enabled": false,
  "containers": {
    "c": { "image": "pulled-busybox", "command": ["/bin/sh", "-c", "echo PULLED-IMAGE-OK; exec sleep infinity"] }
  }
}
EOJ
  dir=$root$EXT_LAB/checkouts/workload-gone
  mkdir -p "$dir" && printf 'tenants/lab-pull\nimages/pulled-busybox.json\n' > "$dir/.lab-remove"
}

# --- guest side ----------------------------------------------------------------------------

# ext_sync CHECKOUT: the stand-in for `bbhv sync` (see the top). The new generation is the
# current one with the checkout's images/ and hosts/ laid over it, so the tenants other
# scenarios applied stay as they are.
ext_sync() {
  local src=$1 state=/var/lib/bitbuilder gens=/var/lib/bitbuilder/generations seq gen new
  mkdir -p "$gens" || return 1
  seq=$(find "$gens" -mindepth 1 -maxdepth 1 -name '[0-9]*' -printf '%f\n' | sed 's/-.*//' | sort -n | tail -1)
  seq=$(( ${seq:-0} + 1 ))
  gen=$seq-$(printf '%040x' "$((seq + 0xe700))")
  new=$gens/.$gen.new
  rm -rf --one-file-system "${new:?}"
  mkdir -p "$new" || return 1
  if [ -d "$state/current/" ]; then cp -a "$state/current/." "$new/" || return 1; fi
  rm -rf --one-file-system "${new:?}/images/hello.json" "${new:?}/hosts"
  # A checkout may remove what an earlier one added: .lab-remove lists relative paths.
  if [ -f "$src/.lab-remove" ]; then
    local p
    while read -r p; do
      case $p in ''|/*|*..*) echo "ext_sync: bad path in .lab-remove: $p"; return 1 ;; esac
      rm -rf --one-file-system "${new:?}/$p"
    done < "$src/.lab-remove"
  fi
  cp -a "$src/." "$new/" && rm -f "$new/.lab-remove" || return 1
  echo "\$ bbhv image pull --checkout $new   # $src"
  if ! bbhv image pull --checkout "$new" || ! bbhv ext verify --checkout "$new"; then
    rm -rf --one-file-system "${new:?}"
    echo "ext_sync: $src refused; current unchanged"
    return 1
  fi
  mv -T "$new" "$gens/$gen" || return 1
  if [ -e "$state/current" ]; then
    cp -P "$state/current" "$state/previous.lab-new" && mv -T "$state/previous.lab-new" "$state/previous" || return 1
  fi
  ln -sfn "generations/$gen" "$state/current.lab-new" && mv -T "$state/current.lab-new" "$state/current" || return 1
  echo "\$ bbhv ext apply && bbhv reload   # generation $gen"
  bbhv ext apply && bbhv reload
}

# ext_git_sync NAME: main at the signed commit of checkout NAME, then the real `bbhv sync`.
# Its exit status (0 applied, 1 refused or rolled back); its output on stdout.
ext_git_sync() {
  local id
  id=$(cat "$EXT_LAB/refs/$1") || return 2
  git -C /srv/tenants.git update-ref refs/heads/main "$id" || return 2
  echo "\$ bbhv sync --allow-rollback   # main at $1 ($id)"
  bbhv sync --allow-rollback 2>&1
}

# ext_git_rollback: `bbhv rollback` to the previous generation (offline, from the store).
ext_git_rollback() {
  echo "\$ bbhv rollback"
  bbhv rollback 2>&1
}

# ext_git_reset: the commit that pins nothing: unmerges hello, leaves the store.
ext_git_reset() {
  ext_git_sync empty
  ext_http_down
}

# ext_rollback: `current` back to `previous`, then apply from the store (no fetch).
ext_rollback() {
  local state=/var/lib/bitbuilder target
  target=$(readlink "$state/previous") || { echo "no previous generation"; return 1; }
  cp -P "$state/current" "$state/previous.lab-new" && mv -T "$state/previous.lab-new" "$state/previous" || return 1
  ln -sfn "$target" "$state/current.lab-new" && mv -T "$state/current.lab-new" "$state/current" || return 1
  echo "\$ bbhv ext apply && bbhv reload   # rollback to $target"
  bbhv ext apply && bbhv reload
}

# ext_http_up / ext_http_down: busybox httpd serving /srv/bbhv-lab on loopback.
ext_http_up() {
  systemctl is-active -q lab-httpd.service && return 0
  systemd-run --unit=lab-httpd --quiet busybox httpd -f -p "$EXT_HTTP" -h "$EXT_LAB" || return 1
  wait_for 10 "httpd on $EXT_HTTP" busybox wget -q -O /dev/null "http://$EXT_HTTP/serve/SHA256SUMS"
}
ext_http_down() {
  systemctl stop lab-httpd.service 2>/dev/null
  systemctl reset-failed lab-httpd.service 2>/dev/null
  return 0
}

# ext_hello: what the active sysext's binary prints ("none" when there is none).
ext_hello() { if command -v bbhv-hello >/dev/null; then bbhv-hello; else echo none; fi; }

# ext_reset: nothing pinned (a checkout without hosts/): unmerges hello, leaves the store.
ext_reset() {
  local empty=/run/lab/ext-empty
  rm -rf --one-file-system "${empty:?}"; mkdir -p "$empty"
  ext_sync "$empty"
  ext_http_down
}
