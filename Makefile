# CoffeeBuddy: every target runs the same way over every Go module it finds
# (OpenTelemetry-Go style), so a new module needs no Makefile edit.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module; deploy/validate carries the heavy Knative API types and is
# tested like the others but never imported by them.
MODULES := $(shell find . -name go.mod -not -path './.tmp/*' -not -path '*/node_modules/*' -printf '%h\n' | sort)
GOTESTFLAGS ?= -count=1
BIN := $(CURDIR)/.tmp/bin

.PHONY: help run demo test secret-scan chaos ratelimit-bench vet bench migrate-up migrate-down schema-doc new-function build tidy fmt ensure-postgres ensure-shellcheck

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

test: ensure-postgres ensure-shellcheck build ## go vet + tests of every module against real PostgreSQL and Kafka, then the secret scan
	@failed=""; for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && GOWORK=off go vet ./... && GOWORK=off DEVSTACK_BIN=$(BIN) go test $(GOTESTFLAGS) ./...) || failed="$$failed $$m"; \
	done; \
	bash .ci/test-new-function || failed="$$failed new-function"; \
	echo "== secret scan"; bash .ci/secret-scan || failed="$$failed secret-scan"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

secret-scan: build ## gitleaks over the working tree, the history from HEAD and the functions' binaries (.gitleaks.toml)
	bash .ci/secret-scan

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

ensure-shellcheck: ## Install shellcheck (Debian, as root) for the operator scripts' tests
	@bash .ci/ensure-shellcheck
