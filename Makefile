# Steward's two entry points: `make run` (build everything, serve on embedded SQLite) and
# `make test` (the whole suite, as CI runs it). System packages (Chromium for the browser
# tests, OpenSSH for the SSH tests, systemd-analyze for the agent units, cron's crontab for the
# agent's start at boot, Docker's daemon for container metrics) are installed by .ci/run; npm
# packages and crates are fetched by these targets.
SHELL := /bin/bash
CARGO ?= cargo
NPM ?= npm
DATA_DIR ?= ./steward-data
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.PHONY: run build ui ui-deps api-types check-api-types test lint ui-check test-sqlite test-postgres test-e2e debug-binary bench-fanout bench-terminal bench-agent bench-ingest bench-live

## Build everything (UI included) in release mode and start the server on http://127.0.0.1:8080.
run: build
	./target/release/steward serve --data-dir $(DATA_DIR)

# The agent binary goes next to the steward binary, where `steward serve` finds it
# (`--agent-binary` default) to hand out and install over SSH. (`--profile agent` is the
# release profile tuned for size; cargo refuses `--release` together with `--profile`.)
build: ui
	$(CARGO) build --release --locked -p steward
	$(CARGO) build --locked --profile agent -p steward-agent
	cp target/agent/steward-agent target/release/steward-agent

ui-deps: web/node_modules/.package-lock.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund

ui: ui-deps
	cd web && $(NPM) run build

# Debug steward and steward-agent side by side (target/debug), as the tests and `serve` expect.
debug-binary:
	$(CARGO) build --locked -p steward -p steward-agent

## Regenerate the UI's API types from the server's OpenAPI document.
api-types: debug-binary ui-deps
	./target/debug/steward openapi > web/src/api/openapi.json
	cd web && $(NPM) run --silent gen:api

check-api-types: api-types
	@git diff --quiet -- web/src/api || { git --no-pager diff --stat -- web/src/api; \
	  echo "web/src/api is stale: run 'make api-types' and commit the result"; exit 1; }

## The whole suite: Rust formatting and lints, the UI's checks, every Rust test against SQLite
## and against PostgreSQL, then the browser tests.
test: lint ui-check test-sqlite test-postgres test-e2e

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

ui-check: ui check-api-types
	cd web && $(NPM) run typecheck && $(NPM) run lint && $(NPM) test

# nextest when present (parallel, one process per test); plain cargo test otherwise.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run --no-fail-fast" || echo "test --no-fail-fast")

test-sqlite: ui
	STEWARD_TEST_DB=sqlite $(CARGO) $(TEST_RUNNER) --workspace --locked

test-postgres: ui
	STEWARD_TEST_DB=postgres STEWARD_TEST_POSTGRES_URL=$(POSTGRES_URL) $(CARGO) $(TEST_RUNNER) --workspace --locked

test-e2e: ui debug-binary
	cd web && $(NPM) run e2e

## Benchmarks (not part of the tests; results go to docs/PERFORMANCE.md). Run as root.
bench-fanout: build
	command -v parallel-ssh >/dev/null || apt-get install -y -qq pssh
	test -x bench/.venv/bin/python || python3 -m venv bench/.venv
	bench/.venv/bin/pip install -q parallel-ssh requests
	bench/.venv/bin/python bench/fanout.py

bench-terminal:
	$(CARGO) test --release --locked -p steward --test terminal_bench -- --ignored --nocapture --test-threads 1

bench-agent: build
	$(CARGO) build --locked --profile agent -p steward-agent
	command -v prometheus-node-exporter >/dev/null || apt-get install -y -qq prometheus-node-exporter
	python3 bench/agent_footprint.py

# Monitoring at fleet scale against a release `steward serve` (crates/steward/examples/monitor_bench.rs):
# BENCH_DATABASE=postgres://postgres@127.0.0.1:5432/postgres for PostgreSQL (a new database is created).
bench-ingest: build
	$(CARGO) build --release --locked -p steward --example monitor_bench
	ulimit -n 20000 && ./target/release/examples/monitor_bench ingest

bench-live: build
	$(CARGO) build --release --locked -p steward --example monitor_bench
	cd bench/live-node && $(NPM) ci --no-audit --no-fund
	ulimit -n 20000 && ./target/release/examples/monitor_bench live
