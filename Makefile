# CoffeeBuddy: every target runs the same way over every Go module it finds
# (OpenTelemetry-Go style), so a new module needs no Makefile edit.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module; deploy/validate carries the heavy Knative API types and is
# tested like the others but never imported by them.
MODULES := $(shell find . -name go.mod -not -path './.tmp/*' -not -path '*/node_modules/*' -printf '%h\n' | sort)
GOTESTFLAGS ?= -count=1
BIN := $(CURDIR)/.tmp/bin

.PHONY: help run demo test secret-scan playground-test hydra-e2e chaos ratelimit-bench audit-bench vet bench migrate-up migrate-down migrate-version migrate-force schema-doc new-function build tidy fmt ensure-postgres ensure-pgbouncer ensure-deck ensure-helm kong-check chart ensure-observability check-observability ensure-hydra ensure-browser ensure-shellcheck

help: ## List targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# PROMETHEUS=1 installs and requires the local Prometheus, PROMETHEUS=0 skips
# it; unset, make run starts it when it is installed.
run: ensure-postgres build ## Run the whole bot locally on embedded defaults, with a local Prometheus when installed (PROMETHEUS=1 installs it, 0 skips it)
	@if [ "$(PROMETHEUS)" = 1 ]; then bash .ci/ensure-observability; fi
	go build -o $(BIN)/devstack ./eventing/cmd/devstack
	DEVSTACK_BIN=$(BIN) PROMETHEUS=$(PROMETHEUS) $(BIN)/devstack

demo: ensure-postgres build ## Play a whole scripted coffee run on the local stack; watch it in the browser, which stays up until Ctrl-C
	go build -o $(BIN)/demo ./eventing/cmd/demo
	DEVSTACK_BIN=$(BIN) $(BIN)/demo $(DEMO_FLAGS)

build: ## Build every function into .tmp/bin
	go build -o $(BIN)/ $(addprefix ./,$(wildcard functions/*))

# COFFEE_BROWSER_TEST=required: the browser test (eventing/devstack's
# TestPlaygroundInBrowser) fails rather than skips without its browser.
test: ensure-postgres ensure-pgbouncer ensure-deck ensure-helm ensure-observability ensure-browser ensure-shellcheck build ## gofmt, go vet + tests of every module against real PostgreSQL, PgBouncer and Kafka (the local Slack page in Chromium included), the Helm chart, the Kong config through decK, the observability checks (promtool, amtool), then the secret scan
	@failed=""; unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; failed=" gofmt"; fi; \
	for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && GOWORK=off go vet ./... && GOWORK=off DEVSTACK_BIN=$(BIN) DECK_BIN=$(BIN)/deck HELM_BIN=$(BIN)/helm COFFEE_BROWSER_TEST=required go test $(GOTESTFLAGS) ./...) || failed="$$failed $$m"; \
	done; \
	echo "== deploy/kong"; \
	bash .ci/kong-check || failed="$$failed deploy/kong"; \
	echo "== observability"; \
	bash .ci/check-observability || failed="$$failed observability"; \
	bash .ci/test-new-function || failed="$$failed new-function"; \
	echo "== secret scan"; bash .ci/secret-scan || failed="$$failed secret-scan"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

playground-test: ensure-postgres ensure-browser build ## Only the browser test: a whole coffee run played as three people in the local Slack page (screenshots in .tmp/artifacts)
	cd eventing && GOWORK=off DEVSTACK_BIN=$(BIN) COFFEE_BROWSER_TEST=required go test $(GOTESTFLAGS) -v -run TestPlaygroundInBrowser ./devstack/

hydra-e2e: ensure-postgres ensure-hydra build ## The audit API against a real Ory Hydra v2.3.0 (built once into .tmp/bin; not in make test, CI runs both: ADR 0014)
	cd eventing && GOWORK=off HYDRA_E2E=1 DEVSTACK_BIN=$(BIN) go test $(GOTESTFLAGS) -run Hydra ./hydra/ ./devstack/

secret-scan: build ## gitleaks over the working tree, the history from HEAD and the functions' binaries (.gitleaks.toml)
	bash .ci/secret-scan

chaos: ensure-postgres build ## Fault-injection suite: 1,260 orders over 63 runs through Kafka/PostgreSQL restarts, kills, Slack 429/500 storms, triple and shuffled delivery (docs/reliability.md)
	go build -o $(BIN)/chaos ./eventing/cmd/chaos
	DEVSTACK_BIN=$(BIN) $(BIN)/chaos

vet: ## go vet every module
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go vet ./...); done

bench: ensure-postgres build ## Benchmarks and load drivers, the audit query API and retention at 10M rows included (see docs/benchmarks.md)
	bash functions/slack-ingress/bench/run.sh
	cd shared && go run ./cmd/scalebench -audit -o ../.tmp/bench/scalebench.md $(AUDIT_BENCH_FLAGS)

audit-bench: ensure-postgres ## Only the audit benchmarks: query API (pages, export) and retention at 10M audit rows, about 35 min (AUDIT_BENCH_FLAGS="-audit-rows 1000000" for less)
	cd shared && go run ./cmd/scalebench -journey=false -audit -o ../.tmp/bench/auditbench.md $(AUDIT_BENCH_FLAGS)

ratelimit-bench: ensure-postgres build ## Sustained Slack rate limiting: 20 runs under 1 post/s/channel + 50 calls/min (see docs/benchmarks.md)
	go build -o $(BIN)/ratelimitbench ./eventing/cmd/ratelimitbench
	DEVSTACK_BIN=$(BIN) $(BIN)/ratelimitbench

migrate-up: ## Apply all migrations to DATABASE_URL
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL"; exit 1; }
	cd shared && go run ./cmd/migrate up

migrate-down: ## Roll back all migrations on DATABASE_URL (STEPS=N for fewer)
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL"; exit 1; }
	cd shared && go run ./cmd/migrate down $(STEPS)

migrate-version: ## Print the applied migration version of DATABASE_URL ("N (dirty)" after a failed migration)
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL"; exit 1; }
	@cd shared && go run ./cmd/migrate version

migrate-force: ## After a failed migration (version "N (dirty)"): mark VERSION applied and clean, then migrate-up
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL"; exit 1; }
	@test -n "$(VERSION)" || { echo "set VERSION (the version before the one that failed)"; exit 1; }
	cd shared && go run ./cmd/migrate force $(VERSION)

schema-doc: ensure-postgres ## Regenerate docs/schema.md from a live, migrated database
	cd shared && go run ./cmd/migrate schema-doc -o ../docs/schema.md

new-function: ## Scaffold a function: make new-function NAME=run-close TYPE=com.coffeebuddy.run.due
	@test -n "$(NAME)" -a -n "$(TYPE)" || { echo "usage: make new-function NAME=<name> TYPE=<cloudevent type>"; exit 1; }
	bash .ci/new-function "$(NAME)" "$(TYPE)"

tidy: ## go mod tidy every module
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

fmt: ## gofmt every module
	gofmt -w $$(git ls-files '*.go')

ensure-postgres: ## Install PostgreSQL server binaries if this machine lacks them
	@bash .ci/ensure-postgres

ensure-deck: ## Build decK v1.64.0 into .tmp/bin/deck once (about 8-12 min cold; kept by version)
	@bash .ci/ensure-deck

ensure-helm: ## Build Helm v3.21.4 into .tmp/bin/helm once (about 2.5-5 min cold; kept by version)
	@bash .ci/ensure-helm

ensure-pgbouncer: ## Install PgBouncer (Debian package) for the transaction-pooling test
	@bash .ci/ensure-pgbouncer

chart: ensure-helm ## Regenerate the Helm chart's generated parts, .ko.yaml, deploy/knative and deploy/vault's policies and roles from their sources (deploy/helm/gen, deploy/vault)
	cd deploy/helm/gen && GOWORK=off go run . -helm $(BIN)/helm
	cd deploy/vault && GOWORK=off go generate ./...

kong-check: ## deploy/kong through decK offline: deck file validate, deck file lint with deploy/kong/lint-ruleset.yaml
	@bash .ci/kong-check

ensure-observability: ## Install Debian's prometheus (promtool) and prometheus-alertmanager (amtool) if missing
	@bash .ci/ensure-observability

check-observability: ensure-observability ## promtool check/test rules, amtool check-config and routes (part of make test)
	@bash .ci/check-observability

ensure-hydra: ## Build Ory Hydra v2.3.0 into .tmp/bin/hydra once (make run then uses it as the audit API's issuer)
	@bash .ci/ensure-hydra

ensure-browser: ## Install Chromium and playwright-core for the browser test if missing (apt, npm ci; once)
	@bash .ci/ensure-browser

ensure-shellcheck: ## Install shellcheck (Debian, as root) for the operator scripts' tests
	@bash .ci/ensure-shellcheck
