# tf-matrix-harness — the two commands a new user needs:
#   make matrix [PROFILE=ci]   build the images the profile needs, run it, write the HTML report
#   make test                  lint, types, unit, payload and integration tests (real Docker engine)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= default
HARNESS_ARGS ?=
BIN := $(VENV)/bin

.PHONY: matrix test host-deps host-deps-matrix venv plan report clean-cache

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# PYTHONWARNINGS: setuptools' advisory banner about editable installs is the first thing a newcomer saw
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e '.[test,lint,type]' 'tox>=4.20'
	touch $@

venv: $(BIN)/.installed

host-deps-matrix:
	@bash .ci/host-deps debootstrap

host-deps:
	@bash .ci/host-deps debootstrap chromium

matrix: venv host-deps-matrix
	$(BIN)/harness run --profile $(PROFILE) --report $(HARNESS_ARGS)

plan: venv
	$(BIN)/harness plan --profile $(PROFILE)

report: venv
	$(BIN)/harness report latest

test: venv host-deps
	TFMH_DOCKER_TESTS=1 $(BIN)/tox run -e lint,type,unit,payload,integration

clean-cache:
	rm -rf "$${TFMH_CACHE_DIR:-$$HOME/.cache/tf-matrix-harness}"
