# stegwatch: two commands, each works from a fresh clone (it makes .venv itself).
#   make demo   build the default corpus and prove every label
#   make test   the whole test suite
#   make bench  the benchmarks, written to docs/benchmarks.md (ANCHOR_PYTHON=python-with-sealwatch adds its side)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STEGWATCH := $(VENV)/bin/stegwatch
STAMP := $(VENV)/.installed
DEMO_CORPUS ?= build/default-corpus
# One process by default: on 2 cores pytest-xdist made the suite slower (1,619 s against 1,041 s), since many
# tests start worker pools of their own and each xdist worker builds its own smoke corpus.
# PYTEST_ARGS="-n auto --dist worksteal" spreads it over the cores of a bigger machine.
PYTEST_ARGS ?=

.PHONY: demo test bench venv tools clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# outguess and steghide (Debian packages): installed when running as root, else reported.
tools:
	bash scripts/install-tools.sh

demo: $(STAMP) tools
	$(STEGWATCH) corpus build --out $(DEMO_CORPUS) --preset default
	$(STEGWATCH) validate-streams $(DEMO_CORPUS)
	$(STEGWATCH) monitor --model-version v3 --dataset-path $(DEMO_CORPUS) --split monitor --dashboard docs/grok/v3/performance_dashboard.md
	$(STEGWATCH) monitor --model-version v4 --dataset-path $(DEMO_CORPUS) --split monitor --dashboard docs/grok/performance_dashboard.md
	@echo "dashboards: docs/grok/performance_dashboard.md (V4), docs/grok/v3/performance_dashboard.md (V3), with .html twins"
	@echo "detector quality: docs/detectors.md; run history: .stegwatch/history.db (stegwatch history export)"
	@echo "baseline report: docs/grok/baseline_report.md (stegwatch baseline --models v3 v4 --corpus $(DEMO_CORPUS)); roadmap: docs/grok/research_roadmap.md"
	@echo "live dashboard and production events: STEGWATCH_TOKEN=... $(STEGWATCH) serve (README: Live dashboard and production events)"

test: $(STAMP) tools
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks on the default corpus (built if missing); results in docs/benchmarks.md.
bench: $(STAMP) tools
	$(STEGWATCH) corpus build --out $(DEMO_CORPUS) --preset default
	$(PY) benchmarks/run.py --corpus $(DEMO_CORPUS) --out docs/benchmarks.md $(if $(ANCHOR_PYTHON),--anchor-python $(ANCHOR_PYTHON))

clean:
	rm -rf build .pytest_cache .hypothesis
