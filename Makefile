# make demo: the main job. make test: the CI suite. Both set up .venv and the extension first.
PY      := .venv/bin/python
DEPS    := .venv/.deps
EXT     := torch_biren/_C.stamp
META    := .venv/.torch_biren_installed
SOURCES := $(shell find csrc -name '*.cpp' -o -name '*.h') setup.py
PYTEST  := $(PY) -m pytest -q -p no:cacheprovider

.PHONY: setup demo test test-slow conformance bench clean

setup: $(EXT) $(META)

$(PY):
	python3 -m venv .venv

# torch is pinned: a bare requirement would pull the CUDA build (gigabytes).
# DeepSpeed ships as an sdist whose setup.py imports torch: built against the venv's torch (no build
# isolation, no compiled ops), its pure-Python requirements listed beside it.
$(DEPS): Makefile | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 numpy triton pytest pytest-xdist expecttest \
		transformers hypothesis matplotlib tqdm ninja accelerate==1.15.0 pydantic
	DS_BUILD_OPS=0 $(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
		deepspeed==0.19.8 hjson==3.1.0 msgpack==1.2.4 py-cpuinfo==9.0.0 einops==0.8.2
	touch $@

$(EXT): $(SOURCES) | $(DEPS)
	$(PY) setup.py -q build_ext --inplace
	touch $@

$(META): setup.py | $(DEPS)
	TORCH_BIREN_SKIP_EXT=1 $(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(PY) -m torch_biren demo

# make test leaves out the multi-process and long runs (marked slow) to stay within CI's 10 minutes,
# and runs the test files on every core (at most 4; a file's tests stay in one worker, in order).
test: setup
	$(PYTEST) tests -m "not slow" -n auto --maxprocesses 4 --dist loadfile

test-slow: setup
	$(PYTEST) tests -m slow

conformance: setup
	BIREN_CONFORMANCE=full $(PYTEST) tests/test_conformance.py

bench: setup
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/compile.py

clean:
	rm -rf build torch_biren/_C*.so $(EXT) $(META)
