# Set-up is automatic: every target that needs Python creates .venv (pinned requirements.txt) when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv test lint bench bench-mwam paper-tables demo table4 table5 clean-venv

# make table4 PRESET=smoke | make table4 DATA_ROOT=/data/CASIA-SURF (default preset: paper)
PRESET    ?= paper
DATA_ROOT ?=
TABLE_ARGS = --preset $(PRESET) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

help:
	@echo "make demo        create .venv if needed, train SF-MD and SF-MD + MWAM on synthetic CASIA-SURF,"
	@echo "                 write results/demo/table4.md (labelled synthetic)"
	@echo "make test        create .venv if needed, run the test suite"
	@echo "make table4      train what Table 4 needs and render it (PRESET=paper|smoke|demo, DATA_ROOT=...)"
	@echo "make table5      the same for Table 5 (intervention levels on SF-MD)"
	@echo "make bench       SF-MD training step with / without MWAM and loader throughput (JSON)"
	@echo "make bench-mwam  time one MWAM step (CPU, and CUDA when present); prints one JSON line"
	@echo "make paper-tables render every paper table (md, csv, tex) and Fig. 9 into results/paper/"
	@echo "make lint        ruff"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

bench-mwam: $(STAMP)
	$(PY) scripts/bench_mwam.py --device all

paper-tables: $(STAMP)
	$(PY) -m reproduce paper all --output-dir results/paper
	$(PY) -m reproduce plot filter --output results/paper/fig9

demo: $(STAMP)
	$(PY) -m reproduce table 4 --preset demo --output-dir results/demo
	@echo "--> results/demo/table4.md (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

table4: $(STAMP)
	$(PY) -m reproduce table 4 $(TABLE_ARGS)

table5: $(STAMP)
	$(PY) -m reproduce table 5 $(TABLE_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench_train.py --device all

clean-venv:
	rm -rf $(VENV)
