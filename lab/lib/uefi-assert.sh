# shellcheck shell=bash
# Reading the UEFI run's reports (lab/uefi/boot-runner.sh) in the boot-* checks, on the host.
# $LAB_DATA holds results.txt (virtio-serial), serial.log (firmware, systemd-boot, kernel
# console) and build.log (keys, UKIs, ESP).

# boot_line N -> the "@@BOOT N ..." line.
boot_line() { grep -a "^@@BOOT $1 " "$LAB_DATA/results.txt"; }
# boot_field N KEY -> KEY=value of boot N.
boot_field() { boot_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# status_json N -> the `bbhv boot status --json` of boot N.
status_json() { sed -n "s/^@@STATUS $1 //p" "$LAB_DATA/results.txt" | tail -1; }
# slot_field N FILE-PREFIX KEY: a field of the slot whose file starts with FILE-PREFIX.
slot_field() {
  status_json "$1" | jq -r --arg p "$2" --arg k "$3" \
    '.slots[] | select(.file | startswith($p)) | .[$k] | tostring'
}
# files N -> the slot files of boot N, space-separated, sorted.
files() { status_json "$1" | jq -r '[.slots[].file] | sort | join(" ")'; }
# selected N -> LoaderEntrySelected of boot N, as `bbhv boot status` read it.
selected() { status_json "$1" | jq -r '.firmware.entry_selected'; }
