# Packages: make deb rpm (nfpm), make package-check (lint, reproducibility,
# install test). Included from the top-level Makefile.

PKG_VERSION := $(shell sed -n 's/^- semver: *\([^-]*\)-.*/\1/p' packaging/changelog.yml | head -n1)
PKG_ARCH    ?= amd64
COMMIT      ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# reproducible-builds.org: every timestamp in the packages is this one.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH PKG_VERSION PKG_ARCH
STAGE := dist/stage
NFPM  := dist/bin/nfpm
DEB   := dist/relaycap_$(PKG_VERSION)-1_$(PKG_ARCH).deb
RPM   := dist/relaycap-$(PKG_VERSION)-1.x86_64.rpm
PKG_CHECK_DEPS := lintian rpmlint rpm rpm2cpio cpio systemd

.PHONY: deb rpm stage package-check package-deps

$(NFPM): packaging/tools/go.mod packaging/tools/go.sum
	cd packaging/tools && $(GO) build -trimpath -o $(abspath $(NFPM)) github.com/goreleaser/nfpm/v2/cmd/nfpm

# Everything the packages hold, with fixed modes and timestamps.
stage:
	rm -rf $(STAGE) && mkdir -p $(STAGE)/man/man1 $(STAGE)/man/man8 $(STAGE)/completion $(STAGE)/doc/examples
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X main.version=$(PKG_VERSION) -X main.commit=$(COMMIT)" \
		-o $(STAGE)/relaycap ./cmd/relaycap
	$(STAGE)/relaycap man --dir $(STAGE)/man.tmp >/dev/null
	for f in $(STAGE)/man.tmp/*; do s=$${f##*.}; gzip -9n < $$f > $(STAGE)/man/man$$s/$${f##*/}.gz; done
	rm -rf $(STAGE)/man.tmp
	for sh in bash zsh fish; do $(STAGE)/relaycap completion $$sh > $(STAGE)/completion/relaycap.$$sh; done
	cp README.md packaging/copyright $(STAGE)/doc/
	{ echo "# main.cf lines for relaycap: relaycap postfix-config --main, for the shipped config."; \
	  $(STAGE)/relaycap postfix-config --config packaging/relaycap.yaml --main; } > $(STAGE)/doc/examples/postfix-main.cf
	{ echo "# master.cf entries for relaycap: relaycap postfix-config --master."; \
	  $(STAGE)/relaycap postfix-config --config packaging/relaycap.yaml --master; } > $(STAGE)/doc/examples/postfix-master.cf
	cp packaging/dovecot-auth.conf packaging/production-notes.md $(STAGE)/doc/examples/
	if [ -d packaging/monitoring ]; then cp -r packaging/monitoring $(STAGE)/doc/examples/monitoring; fi
	find $(STAGE) -type d -exec chmod 0755 {} + && find $(STAGE) -type f ! -name relaycap -exec chmod 0644 {} +
	find $(STAGE) -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	packaging/contents.sh $(STAGE) < packaging/nfpm.yaml > dist/nfpm.yaml

deb: stage $(NFPM) ## build dist/relaycap_VERSION-1_amd64.deb (nfpm)
	$(NFPM) package --config dist/nfpm.yaml --packager deb --target $(DEB)

rpm: stage $(NFPM) ## build dist/relaycap-VERSION-1.x86_64.rpm (nfpm)
	$(NFPM) package --config dist/nfpm.yaml --packager rpm --target $(RPM)

package-deps: ## install lintian, rpmlint, rpm, systemd-analyze (apt)
	@missing=; for p in $(PKG_CHECK_DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "package-deps: all installed ($(PKG_CHECK_DEPS))"; \
	else echo "package-deps: installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(PKG_CHECK_DEPS); fi

package-check: deb rpm ## lint both packages, rebuild to compare bytes, install test on this machine (root)
	GO=$(GO) packaging/check.sh $(DEB) $(RPM)
