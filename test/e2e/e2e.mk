# End-to-end suite: real Postfix + Dovecot + swaks on loopback, driven by Go.
# Included from the top-level Makefile (include test/e2e/e2e.mk).
# Needs root (a private Postfix instance) and the packages of e2e-deps.

E2E_DEPS_PKGS := postfix dovecot-core swaks libnet-ssleay-perl libio-socket-ssl-perl openssl
E2E_GO        ?= go
E2E_TEST_FLAGS ?=

.PHONY: e2e-deps e2e demo bench-e2e

# Installs the peers; skips apt-get when every package is already there.
e2e-deps: ## install Postfix, Dovecot, swaks, openssl for the e2e suite (apt)
	@missing=; for p in $(E2E_DEPS_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "e2e-deps: all installed ($(E2E_DEPS_PKGS))"; \
	else echo "e2e-deps: installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(E2E_DEPS_PKGS); fi

# The scenarios (test/e2e/s*_test.go) against one shared sandbox.
e2e: ## end-to-end scenarios: real Postfix + Dovecot + swaks + relaycap on loopback (root)
	$(E2E_GO) test -tags e2e -count=1 -v -timeout 15m $(E2E_TEST_FLAGS) ./test/e2e/...

# A demo account (limit 5) sends 2-recipient messages until it hits its quota.
demo: ## the e2e sandbox live: an account sends until its quota stops it, then teardown
	$(E2E_GO) run -tags e2e ./test/e2e/cmd/demo

# 2000 messages x 5 recipients over 10 connections, with and without relaycap.
bench-e2e: ## msg/s through Postfix with relaycap (XCLIENT listener) vs without
	$(E2E_GO) run -tags e2e ./test/e2e/cmd/loadgen -messages 2000 -rcpts 5 -conns 10
