# Two entry points: `make demo` (end-to-end run on generated data) and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Idle OpenMP threads sleep instead of spinning: 3-5x faster torch on shared 2-core machines.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: install demo results results-gpu roadmap roadmap-gpu test test-fast golden bench clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -r requirements.txt
	$(BIN)/pip install --quiet -c constraints.txt --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/evdet demo --out runs/demo

# The small-object matrix (6 variants x 3 seeds; resumes where it stopped): CPU plan, and the GPU-sized one.
results: $(STAMP)
	$(BIN)/evdet exp matrix --plan cpu --work runs/matrix_cpu --out docs/results/cpu

results-gpu: $(STAMP)
	$(BIN)/evdet exp matrix --plan gpu --work runs/matrix_gpu --out docs/results/gpu

# The roadmap study (every module and strategy alone vs the RVT-faithful baseline, and combinations; resumes).
roadmap: $(STAMP)
	$(BIN)/evdet exp matrix --study roadmap --plan cpu

roadmap-gpu: $(STAMP)
	$(BIN)/evdet exp matrix --study roadmap --plan gpu

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Re-measure the golden runs (24 steps of every shipped recipe) after a change that moves them; say so in the commit.
golden: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/golden/golden_runs.py --update

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
