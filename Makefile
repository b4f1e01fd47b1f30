# Set-up is automatic: every target that needs Python creates .venv (pinned requirements.txt) when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv test lint bench-mwam paper-tables demo clean-venv

help:
	@echo "make test        create .venv if needed, run the test suite"
	@echo "make demo        (arrives with the CASIA-SURF issue; see README)"
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

demo:
	@echo "make demo arrives with the CASIA-SURF end-to-end issue (#4): it will train SF-MD and"
	@echo "SF-MD + MWAM on synthetic CASIA-SURF and write results/demo/table4.md. Today: make test, make bench-mwam."
	@exit 2

clean-venv:
	rm -rf $(VENV)
