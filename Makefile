# bingobox — `make test` sets up everything from nothing (apt packages, venv, Python deps) and runs the suite.
# `make demo` runs the virtual store. Setting up twice is quick: nothing is rebuilt that is already there.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-stamp
# libzbar0: pyzbar's library. g++, python3-dev, cmake + OpenBLAS/LAPACK: dlib is built from source with BLAS for
# this machine's processor (see below).
# chromium: the real browser the status screen's tests drive (Playwright with executablePath, no download).
# mosquitto (+ clients): the MQTT broker the fleet tests run; postgresql: the fleet service's other database (both
# Debian's, started on free ports in temp dirs by the tests).
APT_PKGS := libzbar0 g++ python3-dev cmake libopenblas-dev liblapack-dev chromium mosquitto mosquitto-clients postgresql
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DLIB    := dlib==20.0.1
# Our dlib wheels, one folder per processor: what -march=native means to this box's compiler (asked when it is there).
DLIB_WHEELS = $(HOME)/.cache/bingobox/dlib-wheels/$$(uname -m)-$$(gcc -march=native -Q --help=target | md5sum | cut -c1-12)

.PHONY: setup test unit integration lint fuzz product-alone demo store devices-demo sim clean

setup: $(STAMP)

$(STAMP): pyproject.toml hardware/pyproject.toml Makefile
	@missing=""; for p in $(APT_PKGS); do \
	   dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	 $(PY) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	 if [ -n "$$missing" ]; then echo "apt: installing$$missing"; \
	   $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi
	@[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e . -e './hardware[test]'
	@# dlib has no wheels. We build it from source against OpenBLAS: face encoding on the exit's critical
	@# path is 4.6x faster than with the dlib-bin wheel (bingobox bench vision; docs/vision.md).
	@# And for this processor (-march=native): dlib's default x86 flags stop at AVX, where its HOG face detector's
	@# 8-wide integer steps are emulated; with AVX2 it detects 1.7-2.6x faster (docs/vision.md). The build takes
	@# ~8 min once per processor (its wheel kept in DLIB_WHEELS, not pip's cache, which knows nothing of flags).
	@$(BIN)/python -m pip uninstall -q -y dlib-bin 2>/dev/null || true
	@[ -f $(VENV)/.dlib-native ] && $(BIN)/python -c 'import dlib, sys; sys.exit(0 if dlib.DLIB_USE_BLAS else 1)' \
	  2>/dev/null || { w=$(DLIB_WHEELS); ls $$w/dlib-*.whl >/dev/null 2>&1 || { \
	    echo "building dlib with OpenBLAS for this processor (about 8 minutes the first time)"; \
	    rm -rf $$w.part && CFLAGS=-march=native CXXFLAGS=-march=native $(BIN)/python -m pip wheel -q \
	      --disable-pip-version-check --no-cache-dir --no-deps --no-binary dlib -w $$w.part '$(DLIB)' && \
	    mkdir -p $$w && mv $$w.part/dlib-*.whl $$w/ && rm -rf $$w.part || { echo "dlib's build failed (above)"; exit 1; }; }; \
	    $(BIN)/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps --no-index \
	      --find-links $$w '$(DLIB)' && touch $(VENV)/.dlib-native; }
	$(BIN)/python -m pip install -q --disable-pip-version-check face_recognition_models Pillow Click
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps face_recognition
	@touch $(STAMP)

# ruff: style and bugs; lint-imports: the layer contracts in pyproject.toml ([tool.importlinter]);
# mypy: types, strict for the core, domain, protocol, wallet and devices ([tool.mypy]).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest -q --durations=15
	$(BIN)/python .ci/product_alone.py

# the product's wheel alone in a clean venv: its commands, the shipped configs, its import graph, a store run
# against the devkit's simulator (.ci/product_alone.py; part of `make test`)
product-alone: setup
	$(BIN)/python .ci/product_alone.py

unit: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q tests/integration

# The long fuzzing run of every parser that takes bytes or JSON from outside (tests/fuzz; the suite runs it short).
# FUZZ_EXAMPLES sets the examples per property (default: the `fuzz` profile's 20 000).
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(if $(FUZZ_EXAMPLES),FUZZ_EXAMPLES=$(FUZZ_EXAMPLES)) $(BIN)/python -m pytest -q \
	  -p no:cacheprovider --timeout 7200 --hypothesis-show-statistics tests/fuzz

# The whole store on this box: simulator, mock wallet gateway and controller (with its status screen) as processes,
# scripted shoppers walking through (faces from tests/data/faces), and a summary checked against the ledger.
demo: setup
	$(BIN)/bingobox demo --shoppers 10 --seed 1 --run-dir run/demo

# The same store, kept running after the shoppers, with the status screen on http://127.0.0.1:8080/ (Ctrl-C stops).
store: setup
	$(BIN)/bingobox demo --shoppers 10 --seed 1 --run-dir run/store --screen-port 8080 --keep

# The virtual store alone with a scripted tour, and the drivers watching it (prints every device event).
devices-demo: setup
	@rm -rf run/sim; mkdir -p run
	@$(BIN)/bingobox sim --config config/sim.toml --run-dir run/sim \
	   --scenario hardware/bingobox_devkit/sim/scenarios/shelf-and-doors.yaml > run/sim.log 2>&1 & echo $$! > run/sim.pid; \
	 trap 'kill $$(cat run/sim.pid) 2>/dev/null; wait 2>/dev/null' EXIT INT TERM; \
	 for i in $$(seq 50); do grep -q '^ready' run/sim.log 2>/dev/null && break; sleep 0.2; done; \
	 cat run/sim.log; grep -q '^ready' run/sim.log || { echo "the simulator did not start"; exit 1; }; \
	 $(BIN)/bingobox devices --config config/store.sim.toml --seconds 15 --grant entrance; \
	 echo "--- simulator log"; grep scenario run/sim.log || true

sim: setup
	$(BIN)/bingobox sim --config config/sim.toml --run-dir run/sim

clean:
	rm -rf $(VENV) run .pytest_cache .ruff_cache .hypothesis .mypy_cache *.egg-info hardware/*.egg-info dist
