# One entry point for people and CI. Everything runs through uv in .venv; if uv is
# missing it is bootstrapped into .tools/ with the system Python's venv + pip.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
COMPOSE ?= docker compose
STACK ?= pm-agent-fleet
STACK_FILE ?= .run/stack/$(STACK).yml
PYTEST_ARGS ?=
# The operator CLI (python -m pm_agent_stub): talks to the running stub over HTTP.
CLI := $(UV) run --quiet python -m pm_agent_stub

# Your project (README "Your own project", docs/docker.md "Your project"):
#   make demo PROJECT_DIR=~/src/app [PROJECT_FILE=fleet.yaml]   local processes
#   make up   PROJECT_DIR=~/src/app [PROJECT_FILE=fleet.yaml]   Compose: mounted at /workspace/app
ifdef PROJECT
$(error PROJECT is not a setting: give PROJECT_DIR=<your project's folder> (and PROJECT_FILE=<its project file>))
endif
# Compose reads these from .env (written by `make up PROJECT_DIR=...`), whoever starts it.
unexport PROJECT_DIR PROJECT_NAME PROJECT_FILE PM_UID PM_GID
# A value of .env (the Compose settings), for the CLI to find the stub Compose publishes.
dotenv = $(shell sed -n 's/^$(1)=//p' .env 2>/dev/null | tail -n 1 | sed "s/^['\"]//; s/['\"]$$//")
CLI_TARGETS := status load add-task show rerun resolve
$(CLI_TARGETS): export PM_AGENT_PORT ?= $(call dotenv,PM_AGENT_PORT)
$(CLI_TARGETS): export PM_AGENT_TOKEN ?= $(call dotenv,PM_AGENT_TOKEN)
need = $(if $($(1)),,$(error $(1)= is required: $(2)))

.PHONY: help install test lint demo build up down logs scale status images stack-config stack-up stack-down test-docker test-swarm marcus-env test-marcus chaos bench bench-smoke clean load add-task show rerun resolve export forget-project

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv>=0.5,<1"

install: $(if $(findstring .tools,$(UV)),$(UV)) ## create .venv with every package and dev tool (bootstraps uv)
	$(UV) sync --locked --all-packages --all-groups

test: install ## run the test suite (unit, integration against the real stub, short chaos, fuzzing)
	$(UV) run pytest -m "not docker and not swarm and not chaos_long and not marcus" $(PYTEST_ARGS)

lint: install ## ruff + mypy --strict
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

demo: install ## the stub + workers as local processes: the demo, or PROJECT_DIR=~/src/app [PROJECT_FILE=fleet.yaml]
	$(UV) run python scripts/run_demo.py $(if $(PROJECT_DIR),--project-dir "$(PROJECT_DIR)") $(if $(PROJECT_FILE),--project-file "$(PROJECT_FILE)") $(DEMO_ARGS)

build: ## build the four images (PYTHON_IMAGE=<local base image> where no registry answers)
	$(COMPOSE) build

up: ## docker compose up (build, wait); PROJECT_DIR=~/src/app mounts it (kept in .env), PROJECT_FILE= loads, DEMO=1 the demo
	$(if $(PROJECT_DIR),python3 scripts/fleet_env.py project "$(PROJECT_DIR)")
	@COMPOSE="$(COMPOSE)" python3 scripts/fleet_up.py check-port
	$(COMPOSE) up -d --build --wait
	@python3 scripts/fleet_up.py board
	$(if $(DEMO),$(MAKE) --no-print-directory load FILE=examples/demo-project/project.yaml)
	$(if $(PROJECT_FILE),$(MAKE) --no-print-directory load FILE="$(if $(PROJECT_DIR),$(PROJECT_DIR)/)$(PROJECT_FILE)" \
	  $(if $(PROJECT_DIR),DEFAULT_PATH="$$(basename "$$(cd "$(PROJECT_DIR)" && pwd -P)")"))

forget-project: ## drop PROJECT_DIR (and the uid that came with it) from .env; the next make up runs without it
	python3 scripts/fleet_env.py forget

down: ## docker compose down (workers drain: tasks finish or are released)
	$(COMPOSE) down

logs: ## follow the fleet's logs (readable on a terminal; one JSON object a line when piped: make logs | jq)
	@$(COMPOSE) logs -f --tail=100 $(SERVICE) | python3 scripts/logview.py

testing ?= 1
documentation ?= 1
devops ?= 1
scale: ## e.g. make scale testing=3 documentation=2
	$(COMPOSE) up -d --wait --scale testing-worker=$(testing) --scale documentation-worker=$(documentation) --scale devops-worker=$(devops)

status: install ## the board and the workers (ids whole), from the running stub over HTTP
	$(CLI) status $(if $(ALL),--all)

load: install ## add a project file's tasks: make load FILE=~/src/app/fleet.yaml (read here, sent to the stub) [DEFAULT_PATH=app]
	$(call need,FILE,make load FILE=path/to/fleet.yaml)
	$(CLI) load "$(FILE)" $(if $(DEFAULT_PATH),--default-path "$(DEFAULT_PATH)")

export ID NAME SKILLS PRIORITY DEPENDS_ON PAYLOAD DESCRIPTION REASON RESOLUTION
add-task: install ## one task without a file: make add-task ID=tests NAME="Run tests" SKILLS=testing PAYLOAD='{"path": "app"}' [PRIORITY= DEPENDS_ON=a,b]
	$(call need,ID,make add-task ID=<task id> NAME="<what it is>")
	$(call need,NAME,make add-task ID=<task id> NAME="<what it is>")
	$(CLI) add-task --id "$$ID" --name "$$NAME" --skills "$${SKILLS:-}" --priority "$${PRIORITY:-medium}" \
	  --depends-on "$${DEPENDS_ON:-}" --payload "$${PAYLOAD:-{\}}" --description "$${DESCRIPTION:-}"

show: install ## one task: why it is blocked (with suggestions), its artifacts and progress log: make show TASK=tests
	$(call need,TASK,make show TASK=<task id>)
	$(CLI) show "$(TASK)"

rerun: install ## a done or blocked task back to the queue (history kept): make rerun TASK=tests [REASON=...] [WITH_DEPENDENTS=1]
	$(call need,TASK,make rerun TASK=<task id>)
	$(CLI) rerun "$(TASK)" --reason "$${REASON:-}" $(if $(WITH_DEPENDENTS),--with-dependents)

resolve: install ## close a task's blockers, back to the queue from its checkpoint: make resolve TASK=x RESOLUTION="what was done"
	$(call need,TASK,make resolve TASK=<task id> RESOLUTION="<what was done>")
	$(call need,RESOLUTION,make resolve TASK=<task id> RESOLUTION="<what was done>")
	$(CLI) resolve "$(TASK)" --resolution "$$RESOLUTION"

FOLDER ?= demo-project
DEST ?= .run/export
export: ## copy a project folder out of the workspace volume: make export [FOLDER=demo-project] [DEST=.run/export]
	@mkdir -p "$(DEST)"
	$(COMPOSE) cp "documentation-worker:/workspace/$(FOLDER)" "$(DEST)/"
	@echo "copied /workspace/$(FOLDER) to $(DEST)/$(FOLDER)"

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
