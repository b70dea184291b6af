# make demo: set up and run the examples. make test: set up and run the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow opdb fuzz bench bench-plots device-check clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,onnx]'
	# tests/real/: published libraries. They accept torch 2.13 (torchdiffeq: torch>=1.5,
	# pytorch-minimize: torch>=1.9, pytorch-crf: none, linear_operator: torch>=2.0, pyro-ppl and
	# torchmetrics: torch>=2.0, zuko: torch>=1.12, torchsde: torch>=1.6), so pip keeps
	# the torch above; the constraint turns a release that asks for more into a failure instead
	# of an upgrade.
	echo torch==2.13.0 > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e '.[real]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/run_all.py

# One pytest worker per core (pytest-xdist), each with one torch thread: the tests run small
# ops, where torch's own threads only contend with the other workers. `--dist worksteal`: each
# worker starts on half of the tests and an idle one takes half of the other's queue, so the two
# end close together (docs/testing.md, "The suite's time (session 46)": simulated on measured
# tests, the wall past an even split was 1.9 s on average, 12 s at most, against `--dist load`'s
# 2.0 and 22 s and loadfile's 8.7 and 37 s). Every test runs; the
# construct families (tests/reference/, the fuzz regressions) run torch.compile, and
# torch.export with its saved program's round trip, for one test per kind of staged statement,
# its cheapest over all the files (tests/compile_sample.py), and plain Python and the staged
# replay for all (docs/testing.md; since session 54 the other tests' export is make test-slow's:
# about 800-855 s estimated from 895 s, "The suite's time (session 54)"; and tests/real's replay
# findings' export, tests/deferred_exports.txt: test_tester52b + 48, one process side by side,
# load 10-14, 48.8 s of CPU before, 40.7 s after, -17%; tester50 + 47 + 44, 40.2 s, 34.1 s).
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -x -p no:cacheprovider -n auto --dist worksteal \
		--durations=40 tests

# make test-slow: what `make test` leaves out for time (docs/testing.md): the tests marked slow
# (an AOTInductor build: minutes; the fuzz sample under torch.compile) and, whole, the tests
# marked slow_compile (the compiling tests of tests/reference/ and the fuzz regressions whose
# kind another test compiles in make test, with their exports where another test exports the
# kind: tests/compile_sample.py, and the
# table cases their files mark), and the tests tests/slow_tests.txt lists as measured too slow for
# make test. make test and make test-slow together run all.
test-slow: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -x -p no:cacheprovider -n auto --dist worksteal \
		-m "slow or slow_compile or slow_export" \
		--run-slow tests

# make opdb: the python backend against eager on all of torch's operator database (long: about
# half an hour of CPU; figures in docs/backends.md). `make test` runs a fixed sample of it.
opdb: $(STAMP)
	$(PY) -m tests.opdb

# make fuzz N=10000 [SEED=S] [COMPILE_EVERY=K] [WITH="closure match"]: the differential fuzzer;
# failures go to fuzz-failures/. Every K-th program (default 25, 0 for none) is also exported
# (torch.export, saved and loaded) and run under torch.compile. WITH adds constructs written
# after earlier seeds were run (closure, optional, walrus, match: docs/fuzzing.md, `--with`).
N ?= 1000
COMPILE_EVERY ?= 25
fuzz: $(STAMP)
	$(PY) -m tests.fuzz --n $(N) $(if $(SEED),--seed $(SEED)) \
		$(if $(COMPILE_EVERY),--compile-every $(COMPILE_EVERY)) \
		$(foreach construct,$(WITH),--with $(construct)) --out fuzz-failures

# make bench: every benchmark side by side, results also in $(BENCH_JSON).
# make bench-plots: docs/benchmarks.md's plots and tables from $(BENCH_JSON) (runs make bench
# first when there is none).
# BENCH_ARGS="--threads 1 --sections conversion,loops" made the figures in docs/benchmarks.md.
BENCH_JSON ?= docs/bench-results.json
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run.py --json $(BENCH_JSON) $(BENCH_ARGS)

$(BENCH_JSON):
	$(MAKE) bench

bench-plots: $(BENCH_JSON)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/plots.py $(BENCH_JSON) docs

# make device-check [OUT=folder]: issue 12's GPU run (the cuda tests, benchmarks/cuda.py, the loop
# workloads on the device) in at most about 8 minutes, made for a bare machine lent for minutes:
# no venv, no pip index (gast and astor come from .whl/). See benchmarks/device_check.sh.
device-check:
	OUT=$(or $(OUT),/tmp/device-check) bash benchmarks/device_check.sh

clean:
	rm -rf $(VENV) build *.egg-info
