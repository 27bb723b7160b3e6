# snowlink's front door: `make run` starts everything locally, `make test` runs every test against real services.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c
SERVICES := scripts/services.sh

.PHONY: run test bench down services

services:
	$(SERVICES) up

test:
	SNOWLINK_FAST_PG=1 $(SERVICES) up
	scripts/browser.sh
	set -a; . <($(SERVICES) env); set +a
	cargo test --workspace

# Benchmarks (criterion; not timed tests). idgen's HTTP benchmark leases from the ZooKeeper started here.
bench:
	$(SERVICES) up
	set -a; . <($(SERVICES) env); set +a
	cargo bench -p idgen

run:
	scripts/run.sh

down:
	scripts/run.sh stop
	$(SERVICES) down
