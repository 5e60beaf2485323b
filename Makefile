# One entry point for people and CI. Everything runs through uv in .venv; if uv is
# missing it is bootstrapped into .tools/ with the system Python's venv + pip.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
COMPOSE ?= docker compose
STACK ?= pm-agent-fleet
STACK_FILE ?= .run/stack/$(STACK).yml
PYTEST_ARGS ?=

.PHONY: help install test lint demo build up down logs scale status images stack-config stack-up stack-down test-docker test-swarm marcus-env test-marcus chaos bench bench-smoke clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv>=0.5,<1"

install: $(if $(findstring .tools,$(UV)),.tools/bin/uv) ## create .venv with every package and dev tool (bootstraps uv)
	$(UV) sync --locked --all-packages --all-groups

test: install ## run the test suite (unit, integration against the real stub, short chaos, fuzzing)
	$(UV) run pytest -m "not docker and not swarm and not chaos_long and not marcus" $(PYTEST_ARGS)

lint: install ## ruff + mypy --strict
	$(UV) run ruff check .
	$(UV) run mypy

demo: install ## run the stub and all workers as local processes on the demo project (no Docker)
	$(UV) run python scripts/run_demo.py

build: ## build the four images (PYTHON_IMAGE=<local base image> where no registry answers)
	$(COMPOSE) build

up: ## docker compose up (build, wait until healthy)
	$(COMPOSE) up -d --build --wait

down: ## docker compose down (workers drain: tasks finish or are released)
	$(COMPOSE) down

logs: ## follow the fleet's logs
	$(COMPOSE) logs -f --tail=100

testing ?= 1
documentation ?= 1
devops ?= 1
scale: ## e.g. make scale testing=3 documentation=2
	$(COMPOSE) up -d --wait --scale testing-worker=$(testing) --scale documentation-worker=$(documentation) --scale devops-worker=$(devops)

status: ## the board and the workers, from the running stub container
	$(COMPOSE) exec pm-agent python -m pm_agent_stub status

images: ## the fleet's images and their sizes
	@docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.CreatedSince}}' | grep -E '^(REPOSITORY|pm-agent-fleet/)'

stack-config: ## docker-compose.yml reshaped for Swarm (stdout): make stack-config > stack.yml
	@$(COMPOSE) config --format json | $(UV) run --quiet python -m devops_worker.swarm

stack-up: build ## deploy the fleet on this swarm (docker swarm init first) from the local images; wait until healthy
	@mkdir -p $(dir $(STACK_FILE))
	@$(MAKE) --no-print-directory stack-config > $(STACK_FILE)
	deploy/swarm/stack.sh up $(STACK) $(STACK_FILE)

stack-down: ## stop the workers (each finishes or releases its task), then docker stack rm; volumes kept
	deploy/swarm/stack.sh down $(STACK)

test-docker: install ## build the images and run the real compose fleet end to end
	$(UV) run pytest -m docker -v $(PYTEST_ARGS)

test-swarm: install ## the fleet as a Swarm stack end to end (makes this engine a one-node swarm, leaves it after)
	$(UV) run pytest -m swarm -v $(PYTEST_ARGS)

# The unmodified Marcus 0.3.8 copy the Marcus suite runs (read-only; each test copies it).
export MARCUS_SOURCE ?= $(abspath ../shared/upstream/marcus)

marcus-env: install ## Marcus's own venv (Python 3.11, mcp 1.x), cached in .cache/marcus-venv/
	$(UV) run python -m tests.marcus.host venv

test-marcus: marcus-env ## the fleet against a real Marcus server (marker marcus)
	$(UV) run pytest -m marcus tests/marcus $(PYTEST_ARGS)

chaos: install ## the long chaos run (M=500 tasks, N=8 workers, kills every 2 s, 3 stub restarts)
	$(UV) run pytest -m chaos_long -s $(PYTEST_ARGS)

bench: install ## benchmarks: results in bench/results/
	$(UV) run python -m bench

bench-smoke: install ## a seconds-long run of the benchmark harness
	$(UV) run python -m bench --smoke

clean: ## remove the venv, caches and demo runs
	rm -rf .venv .tools .run .cache .pytest_cache .mypy_cache .ruff_cache
