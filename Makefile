# make demo: the main job. make test: the CI suite. Both set up .venv and the extension first.
PY      := .venv/bin/python
DEPS    := .venv/.deps
EXT     := torch_biren/_C.stamp
META    := .venv/.torch_biren_installed
SOURCES := $(shell find csrc -name '*.cpp' -o -name '*.h') setup.py
PYTEST  := $(PY) -m pytest -q -p no:cacheprovider

.PHONY: setup demo test conformance bench clean

setup: $(EXT) $(META)

$(PY):
	python3 -m venv .venv

# torch is pinned: a bare requirement would pull the CUDA build (gigabytes).
$(DEPS): | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 numpy triton pytest expecttest \
		transformers hypothesis matplotlib tqdm ninja
	touch $@

$(EXT): $(SOURCES) | $(DEPS)
	$(PY) setup.py -q build_ext --inplace
	touch $@

$(META): setup.py | $(DEPS)
	TORCH_BIREN_SKIP_EXT=1 $(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(PY) -m torch_biren demo

test: setup
	$(PYTEST) tests

conformance: setup
	BIREN_CONFORMANCE=full $(PYTEST) tests/test_conformance.py

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build torch_biren/_C*.so $(EXT) $(META)
