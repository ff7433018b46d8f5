# BitBuilder Hypervisor: build and install.
#   make                      build (release)
#   make install DESTDIR=DIR  install into DIR (a root tree), as a package would
#   make test                 the whole test suite (what .ci/run runs)
#   make bless                re-bless golden trees and the checked-in schema

PREFIX        ?= /usr
BINDIR        ?= $(PREFIX)/bin
UNITDIR       ?= $(PREFIX)/lib/systemd/system
GENERATORDIR  ?= $(PREFIX)/lib/systemd/system-generators
CARGO         ?= cargo
TARGET_DIR    ?= target
RELEASE       := $(TARGET_DIR)/release

UNITS := tenants.slice tenants.target tenant@.service tenant-infra@.service \
         tenant-network@.service tenant-vm@.service bitbuilder-image@.service bitbuilder-storage@.service \
         bitbuilder-generator-rerun.service bitbuilder-generator-report.service \
         bitbuilder-firewall.service bitbuilder-sync.service bitbuilder-sync.timer
NETWORKDCONFDIR ?= $(PREFIX)/lib/systemd/networkd.conf.d
DATADIR         ?= $(PREFIX)/share
MANDIR          ?= $(DATADIR)/man

.PHONY: all build install test bless schema

all: build

build:
	$(CARGO) build --release --locked --bin bbhv --bin tenant-generator --bin mount-generator

# Every path is quoted (DESTDIR may hold spaces); the loop stops at the first failure.
install: build
	install -Dm0755 "$(RELEASE)/bbhv" "$(DESTDIR)$(BINDIR)/bbhv"
	install -Dm0755 "$(RELEASE)/tenant-generator" "$(DESTDIR)$(GENERATORDIR)/tenant-generator"
	install -Dm0755 "$(RELEASE)/mount-generator" "$(DESTDIR)$(GENERATORDIR)/mount-generator"
	install -d "$(DESTDIR)$(UNITDIR)/multi-user.target.wants"
	set -e; for u in $(UNITS); do install -m0644 "units/$$u" "$(DESTDIR)$(UNITDIR)/$$u"; done
	install -Dm0644 "units/tenants-.slice.d/50-bitbuilder.conf" \
		"$(DESTDIR)$(UNITDIR)/tenants-.slice.d/50-bitbuilder.conf"
	install -Dm0644 "units/sysctl.d/50-bitbuilder.conf" \
		"$(DESTDIR)$(PREFIX)/lib/sysctl.d/50-bitbuilder.conf"
	install -Dm0644 "units/networkd.conf.d/50-bitbuilder.conf" \
		"$(DESTDIR)$(NETWORKDCONFDIR)/50-bitbuilder.conf"
	install -d "$(DESTDIR)$(UNITDIR)/sysinit.target.wants"
	ln -sfn ../bitbuilder-firewall.service \
		"$(DESTDIR)$(UNITDIR)/sysinit.target.wants/bitbuilder-firewall.service"
	ln -sfn ../tenants.target "$(DESTDIR)$(UNITDIR)/multi-user.target.wants/tenants.target"
	ln -sfn ../bitbuilder-generator-report.service \
		"$(DESTDIR)$(UNITDIR)/multi-user.target.wants/bitbuilder-generator-report.service"
	# Man pages and bash/zsh/fish completions, generated from bbhv's own parser.
	"$(RELEASE)/bbhv" manuals --man "$(DESTDIR)$(MANDIR)" --completions "$(DESTDIR)$(DATADIR)"

test:
	scripts/test

schema:
	$(CARGO) run --quiet --bin bbhv -- schema > schema/metadata.schema.json

bless: schema
	BLESS=1 $(CARGO) test --quiet -p bbhv --test golden --test validate
