# CoffeeBuddy: every target runs the same way over every Go module it finds
# (OpenTelemetry-Go style), so a new module needs no Makefile edit.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module; deploy/validate carries the heavy Knative API types and is
# tested like the others but never imported by them.
MODULES := $(shell find . -name go.mod -not -path './.tmp/*' -not -path '*/node_modules/*' -printf '%h\n' | sort)
GOTESTFLAGS ?= -count=1
BIN := $(CURDIR)/.tmp/bin

.PHONY: help run demo test chaos ratelimit-bench vet bench migrate-up migrate-down schema-doc new-function build tidy fmt ensure-postgres ensure-deck ensure-helm ensure-pgbouncer kong-check chart

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

run: ensure-postgres build ## Run the whole bot locally on embedded defaults (Ctrl-C stops it)
	go build -o $(BIN)/devstack ./eventing/cmd/devstack
	DEVSTACK_BIN=$(BIN) $(BIN)/devstack

demo: ensure-postgres build ## Play a whole scripted coffee run on the local stack and show the conversation
	go build -o $(BIN)/demo ./eventing/cmd/demo
	DEVSTACK_BIN=$(BIN) $(BIN)/demo

build: ## Build every function into .tmp/bin
	go build -o $(BIN)/ $(addprefix ./,$(wildcard functions/*))

test: ensure-postgres ensure-pgbouncer ensure-deck ensure-helm build ## gofmt, go vet + tests of every module against real PostgreSQL, PgBouncer and Kafka, the Helm chart, and the Kong config through decK
	@failed=""; unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; failed=" gofmt"; fi; \
	for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && GOWORK=off go vet ./... && GOWORK=off DEVSTACK_BIN=$(BIN) DECK_BIN=$(BIN)/deck HELM_BIN=$(BIN)/helm go test $(GOTESTFLAGS) ./...) || failed="$$failed $$m"; \
	done; \
	echo "== deploy/kong"; \
	bash .ci/kong-check || failed="$$failed deploy/kong"; \
	bash .ci/test-new-function || failed="$$failed new-function"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

chaos: ensure-postgres build ## Fault-injection suite: 1,260 orders over 63 runs through Kafka/PostgreSQL restarts, kills, Slack 429/500 storms, triple and shuffled delivery (docs/reliability.md)
	go build -o $(BIN)/chaos ./eventing/cmd/chaos
	DEVSTACK_BIN=$(BIN) $(BIN)/chaos

vet: ## go vet every module
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go vet ./...); done

bench: ensure-postgres build ## Benchmarks and load drivers (see docs/benchmarks.md)
	bash functions/slack-ingress/bench/run.sh
	cd shared && go run ./cmd/scalebench -o ../.tmp/bench/scalebench.md

ratelimit-bench: ensure-postgres build ## Sustained Slack rate limiting: 20 runs under 1 post/s/channel + 50 calls/min (see docs/benchmarks.md)
	go build -o $(BIN)/ratelimitbench ./eventing/cmd/ratelimitbench
	DEVSTACK_BIN=$(BIN) $(BIN)/ratelimitbench

migrate-up: ## Apply all migrations to DATABASE_URL
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL"; exit 1; }
	cd shared && go run ./cmd/migrate up

migrate-down: ## Roll back all migrations on DATABASE_URL (STEPS=N for fewer)
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL"; exit 1; }
	cd shared && go run ./cmd/migrate down $(STEPS)

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

chart: ensure-helm ## Regenerate the Helm chart's generated parts, .ko.yaml and deploy/knative from their sources (deploy/helm/gen)
	cd deploy/helm/gen && GOWORK=off go run . -helm $(BIN)/helm

kong-check: ## deploy/kong through decK offline: deck file validate, deck file lint with deploy/kong/lint-ruleset.yaml
	@bash .ci/kong-check
