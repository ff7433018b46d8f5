# shellcheck shell=bash
# The git-ops fixture of the gitops-* scenarios (container tier).
#
# prepare (host side): a tenant repository is built with real git and SSH-signed commits
# (ssh-keygen keys made per run: "trusted" is in the guest's allowed_signers, "untrusted"
# is not). Every commit a scenario needs is made up front and kept as refs/lab/NAME in a bare
# repository in the guest, /srv/tenants.git; its `main` starts at the first commit. The
# guest's host.toml follows main over git:// on loopback (git daemon in the guest), so the
# sync fetches through a real network transport.
# check (host side, commands in the guest): `gitops_push NAME` moves main to a prepared
# commit, as a push would; `gitops_sync` runs `bbhv sync` in the guest.
#
# Sourced by the scenario files after common.sh and tenants.sh.

GITOPS_HEALTH_DEADLINE=${GITOPS_HEALTH_DEADLINE:-10s}
GITOPS_INTERVAL=${GITOPS_INTERVAL:-5s}

# gitops_init ROOT: keys, the work repository ($LAB_DATA/work), host.toml, allowed_signers.
gitops_init() {
  local work=$LAB_DATA/work etc=$1/etc/bitbuilder
  must_be_under "$etc" "$LAB_VAR" || return 1
  must_be_under "$work" "$LAB_VAR" || return 1
  mkdir -p "$etc" "$work/tenants" || return 1
  # The guest has no link that networkd manages: network-online.target (which
  # bitbuilder-sync.service wants, for its fetch) would wait 2 minutes for one.
  mkdir -p "$1/etc/systemd/system" &&
    ln -sf /dev/null "$1/etc/systemd/system/systemd-networkd-wait-online.service" || return 1
  ssh-keygen -q -t ed25519 -N '' -C lab-trusted -f "$LAB_DATA/trusted" || return 1
  ssh-keygen -q -t ed25519 -N '' -C lab-untrusted -f "$LAB_DATA/untrusted" || return 1
  printf 'ops@lab %s\n' "$(cat "$LAB_DATA/trusted.pub")" > "$etc/allowed_signers" || return 1
  cat > "$etc/host.toml" <<EOF || return 1
[sync]
remote = "git://127.0.0.1/tenants.git"
branch = "main"
interval = "$GITOPS_INTERVAL"
health_deadline = "$GITOPS_HEALTH_DEADLINE"
keep_generations = 5
[trust]
allowed_signers = "/etc/bitbuilder/allowed_signers"
EOF
  git -C "$work" init -q -b main &&
    git -C "$work" config user.name "Lab Ops" &&
    git -C "$work" config user.email ops@lab &&
    git -C "$work" config gpg.format ssh &&
    git -C "$work" config user.signingkey "$LAB_DATA/trusted" &&
    echo "lab tenants" > "$work/README"
}

# gitops_busybox ROOT: the busybox directory image in the guest and images/busybox.json in
# the work tree, and tenant state on a tmpfs (containers need both in the container tier).
gitops_busybox() {
  busybox_image "$1" busybox && tenants_on_tmpfs "$1" && mkdir -p "$LAB_DATA/work/images" &&
    echo '{ "schemaVersion": 1, "format": "directory", "file": "busybox" }' \
      > "$LAB_DATA/work/images/busybox.json"
}

# gitops_tenant ID [JSON]: writes tenants/ID/metadata.json; JSON is more keys (",..." form).
gitops_tenant() {
  mkdir -p "$LAB_DATA/work/tenants/$1" &&
    printf '{ "schemaVersion": 1, "id": "%s"%s }\n' "$1" "${2:-}" \
      > "$LAB_DATA/work/tenants/$1/metadata.json"
}

# gitops_drop ID: removes a tenant from the work tree.
gitops_drop() { git -C "$LAB_DATA/work" rm -q -r "tenants/$1"; }

# gitops_commit NAME [trusted|untrusted|unsigned]: commits the work tree as refs/lab/NAME
# and records its id in $LAB_DATA/refs/NAME.
gitops_commit() {
  local sign
  case ${2:-trusted} in
    trusted) sign=-S ;;
    untrusted) sign=-S$LAB_DATA/untrusted ;;
    unsigned) sign=--no-gpg-sign ;;
    *) echo "gitops_commit: unknown signing $2" >&2; return 1 ;;
  esac
  mkdir -p "$LAB_DATA/refs" &&
    git -C "$LAB_DATA/work" add -A &&
    git -C "$LAB_DATA/work" commit -q --allow-empty "$sign" -m "$1" &&
    git -C "$LAB_DATA/work" update-ref "refs/lab/$1" HEAD &&
    git -C "$LAB_DATA/work" rev-parse HEAD > "$LAB_DATA/refs/$1"
}

# gitops_reset NAME: the work tree goes back to commit NAME (to branch off it).
gitops_reset() { git -C "$LAB_DATA/work" reset -q --hard "refs/lab/$1"; }

# gitops_publish ROOT FIRST: the bare repository in the guest, main at commit FIRST.
gitops_publish() {
  local bare=$1/srv/tenants.git
  must_be_under "$bare" "$LAB_VAR" || return 1
  safe_rm "$bare" || return 1
  git init -q --bare "$bare" &&
    git -C "$LAB_DATA/work" push -q "$bare" 'refs/lab/*:refs/lab/*' &&
    git -C "$bare" update-ref refs/heads/main "refs/lab/$2" &&
    git -C "$bare" symbolic-ref HEAD refs/heads/main &&
    touch "$bare/git-daemon-export-ok"
}

# --- check side ---------------------------------------------------------------------------

# gitops_ref NAME -> the commit id of a prepared commit.
gitops_ref() { cat "$LAB_DATA/refs/$1"; }

# gitops_daemon: git daemon on 127.0.0.1:9418 in the guest, serving /srv.
gitops_daemon() {
  run systemd-run --unit=lab-git-daemon --quiet /usr/lib/git-core/git-daemon \
    --reuseaddr --listen=127.0.0.1 --base-path=/srv --export-all /srv ||
    fail "cannot start git daemon in the guest"
  wait_for 20 "git daemon on 127.0.0.1:9418" git ls-remote git://127.0.0.1/tenants.git main
}

# gitops_push NAME: main moves to the prepared commit NAME (forced: a force-push too).
gitops_push() {
  run git -C /srv/tenants.git update-ref refs/heads/main "$(gitops_ref "$1")" ||
    fail "cannot move main to $1"
}

# gitops_sync [ARGS...] -> bbhv sync's exit status; its output goes to the log and to
# $LAB_DATA/sync.out.
gitops_sync() {
  local rc
  echo "\$ bbhv sync $*"
  in_guest bbhv sync "$@" > "$LAB_DATA/sync.out" 2>&1
  rc=$?
  sed 's/^/    /' "$LAB_DATA/sync.out"
  echo "[rc=$rc]"
  return $rc
}

# expect_sync CODE [ARGS...]: bbhv sync exits CODE.
expect_sync() {
  local want=$1 rc=0; shift
  gitops_sync "$@" || rc=$?
  [ "$rc" = "$want" ] || fail "bbhv sync $* exited $rc, expected $want: $(tail -3 "$LAB_DATA/sync.out" | tr '\n' ' ')"
}

# gitops_current -> the commit `current` is at ("" when none).
gitops_current() {
  in_guest readlink /var/lib/bitbuilder/current 2>/dev/null | sed -n 's|^generations/[0-9]*-||p'
}

# expect_current NAME: `current` is at the prepared commit NAME.
expect_current() { expect_eq "current" "$(gitops_current)" "$(gitops_ref "$1")"; }

# expect_history OUTCOME NAME PATTERN: the last history record of commit NAME has OUTCOME
# and a reason matching PATTERN (grep -E).
expect_history() {
  local record
  record=$(in_guest cat /var/lib/bitbuilder/history.jsonl |
    jq -c --arg c "$(gitops_ref "$2")" 'select(.commit == $c)' | tail -1)
  echo "history of $2: $record"
  [ "$(jq -r .outcome <<<"$record")" = "$1" ] || fail "history: $2 is not '$1': $record"
  jq -r .reason <<<"$record" | grep -Eq "$3" || fail "history: $2's reason does not match '$3': $record"
}
