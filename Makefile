# snowlink's front door: `make run` starts everything locally, `make test` runs every test against real services.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c
SERVICES := scripts/services.sh

.PHONY: run test bench soak down services chart-lint chart-checkov run-ha test-ha services-ha

services:
	$(SERVICES) up

# Renders charts/snowlink (default and every-option values), validates it against the Kubernetes schemas and
# cross-checks it; helm and kubernetes-validate are fetched once into .run/tools/ (pinned, checksum-verified).
chart-lint:
	scripts/chart-lint.sh

# checkov on the default render: no failed NetworkPolicy or secrets-as-environment check (not in make test: checkov
# takes minutes to install).
chart-checkov:
	scripts/chart-checkov.sh

test: chart-lint
	SNOWLINK_FAST_PG=1 $(SERVICES) up
	for t in scripts/tests/*.sh; do bash "$$t"; done
	scripts/browser.sh
	set -a; . <($(SERVICES) env); set +a
	cargo test --workspace
	scripts/schemathesis.sh

# Benchmarks, never timed tests: idgen's criterion benchmarks (its HTTP one leases from the ZooKeeper started
# here), then scripts/bench.sh (release stack, 100k seeded links, redirect vs ceiling, creates; table + JSON + SVG).
bench:
	$(SERVICES) up
	set -a; . <($(SERVICES) env); set +a
	cargo bench -p idgen
	scripts/bench.sh

run:
	scripts/run.sh

# Not in CI: 10 minutes (SOAK_SECONDS) of redirects, creates and hostile requests against `make run`'s stack;
# prints RSS per process over the run and any 5xx a valid request got (scripts/soak.sh).
soak: run
	scripts/soak.sh

# The high-availability topology (README "High availability"): same services and ports, over a ZooKeeper ensemble,
# PostgreSQL x3 under Patroni and a Redis Cluster. It shares ports with the single topology: `make down` first.
run-ha:
	SNOWLINK_TOPOLOGY=ha scripts/run.sh

services-ha:
	SNOWLINK_FAST_PG=1 SNOWLINK_TOPOLOGY=ha $(SERVICES) up

# Kills nodes under traffic (e2e/tests/ha): one test at a time, since they share the nodes.
test-ha: services-ha
	set -a; . <(SNOWLINK_TOPOLOGY=ha $(SERVICES) env); set +a
	cargo test -p e2e --features ha --test ha -- --test-threads=1

# Stops both topologies (services.sh down stops whatever of either is running).
down:
	scripts/run.sh stop
	$(SERVICES) down
