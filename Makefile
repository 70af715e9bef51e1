# Steward's two entry points: `make run` (build everything, serve on embedded SQLite) and
# `make test` (the whole suite, as CI runs it). Both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= ./steward-data
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.PHONY: run build test lint test-sqlite test-postgres

## Build everything in release mode and start the server on http://127.0.0.1:8080.
run: build
	./target/release/steward serve --data-dir $(DATA_DIR)

build:
	$(CARGO) build --release -p steward

## The whole suite: formatting, lints, then every test against SQLite and against PostgreSQL.
test: lint test-sqlite test-postgres

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# nextest when present (parallel, one process per test); plain cargo test otherwise.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run --no-fail-fast" || echo "test --no-fail-fast")

test-sqlite:
	STEWARD_TEST_DB=sqlite $(CARGO) $(TEST_RUNNER) --workspace --locked

test-postgres:
	STEWARD_TEST_DB=postgres STEWARD_TEST_POSTGRES_URL=$(POSTGRES_URL) $(CARGO) $(TEST_RUNNER) --workspace --locked
