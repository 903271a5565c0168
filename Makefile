# relaycap — see README.md. `make help` lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := relaycap
# `make run` keeps its state and key here (the embedded default state_dir).
STATE   := ./relaycap-data

.PHONY: help build run test vet fmt-check bench bench-config load bench-floor fuzz clean monitoring-deps redis-deps test-deps

help:
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build ./relaycap
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/relaycap

run: build ## run the daemon on its embedded defaults (plus a key in ./relaycap-data)
	@mkdir -p $(STATE)
	@test -f $(STATE)/id.keys || ./$(BIN) id keygen --keys-file $(STATE)/id.keys
	RELAYCAP_ID_HEADER_KEYS_FILE=$(STATE)/id.keys ./$(BIN) serve

# The unit tests run real peers (promtool, redis-server, redis-cli) and fail
# without them, so `make test` installs them first on a fresh Debian machine
# (root); each step skips apt when its packages are there.
test-deps: monitoring-deps redis-deps ## install the peers make test runs: promtool (prometheus), redis-server, redis-cli (apt)

test: vet fmt-check test-deps ## vet, gofmt and the race-enabled unit and in-process tests (installs test-deps first)
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...
	$(GO) vet -tags 'e2e install' ./test/install/...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench: ## benchmarks: engine, policy request, milter transaction, token seal/open, admin purchase/usage
	$(GO) test -run '^$$' -bench . -benchmem ./quota/... ./daemon/ ./idheader/ ./metrics/ ./admin/

SIZES ?= 10000,100000,1000000
bench-config: build ## config check, serve ready, 10 SIGHUP reloads under policy load and RSS, for SIZES accounts
	$(GO) run ./test/load/configbench -bin ./$(BIN) -sizes $(SIZES)

load: ## RSS and rate after 100000 accounts each commit one relay (ACCOUNTS=n)
	test/load/run.sh $(or $(ACCOUNTS),100000)

# Ratios against the do-nothing floor, in one run alternating the servers;
# exits 1 when one misses its goal. A benchmark, not part of make test.
BENCH_FLOOR_FLAGS ?=
bench-floor: ## relaycap vs a do-nothing policy server + milter: ratios, RSS, start-up, via Postfix; exit 1 below a goal
	@rc=0; $(GO) run ./test/load/benchfloor $(BENCH_FLOOR_FLAGS) || rc=1; \
	$(E2E_GO) run -tags e2e ./test/e2e/cmd/loadgen -messages 2000 -rcpts 5 -conns 10 -goal 0.95 || rc=1; \
	exit $$rc

FUZZTIME ?= 20s
fuzz: ## run each fuzz target for FUZZTIME
	$(GO) test -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $(FUZZTIME) ./policy/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzScanAgreesWithYAML$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) ./idheader/
	$(GO) test -run '^$$' -fuzz '^FuzzRecord$$' -fuzztime $(FUZZTIME) ./idheader/
	$(GO) test -run '^$$' -fuzz '^FuzzFindToken$$' -fuzztime $(FUZZTIME) ./idheader/
	$(GO) test -run '^$$' -fuzz '^FuzzMTAStream$$' -fuzztime $(FUZZTIME) ./milter/

clean:
	rm -rf $(BIN) dist

# promtool (make test) and the Prometheus server the e2e suite starts on its
# own; policy-rc.d keeps the package from starting its service, and a
# systemd machine gets it disabled and stopped: tests run their own.
monitoring-deps: ## install Debian's prometheus for promtool and the e2e scrape, its service left stopped (apt)
	@if dpkg-query -W -f='$${Status}' prometheus 2>/dev/null | grep -q 'install ok installed'; then \
		echo "monitoring-deps: prometheus installed"; \
	else \
		echo "monitoring-deps: installing prometheus, service not started"; \
		rc=/usr/sbin/policy-rc.d; own=; \
		if [ ! -e $$rc ]; then printf '#!/bin/sh\nexit 101\n' > $$rc && chmod 755 $$rc && own=1; fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; st=$$?; \
		[ -z "$$own" ] || rm -f $$rc; \
		if [ -d /run/systemd/system ]; then systemctl disable --now prometheus.service || true; fi; \
		exit $$st; \
	fi

# redis-server and redis-cli for the tests of the Redis backend, which start
# their own servers (unix sockets, a 3-node cluster on loopback): the
# package's own service is kept from starting, as for prometheus.
redis-deps: ## install Debian's redis-server and redis-tools, their service left stopped (apt)
	@if dpkg-query -W -f='$${Status}' redis-server 2>/dev/null | grep -q 'install ok installed' && \
	    dpkg-query -W -f='$${Status}' redis-tools 2>/dev/null | grep -q 'install ok installed'; then \
		echo "redis-deps: redis-server and redis-tools installed"; \
	else \
		echo "redis-deps: installing redis-server redis-tools, service not started"; \
		rc=/usr/sbin/policy-rc.d; own=; \
		if [ ! -e $$rc ]; then printf '#!/bin/sh\nexit 101\n' > $$rc && chmod 755 $$rc && own=1; fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools; st=$$?; \
		[ -z "$$own" ] || rm -f $$rc; \
		if [ -d /run/systemd/system ]; then systemctl disable --now redis-server.service || true; fi; \
		exit $$st; \
	fi

include test/e2e/e2e.mk
include packaging/packaging.mk
