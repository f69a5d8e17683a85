# Every target sets itself up from nothing in .venv.
# On a machine without the local CPU wheel, point pip at a CPU build of torch, e.g.
#   make demo TORCH_PIP_ARGS="--index-url <a CPU-only torch index>"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dyngraph-installed
DOCS_STAMP := $(VENV)/.dyngraph-docs-installed

.PHONY: setup demo test test-fast bench lint clean docs docs-serve

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first and explicitly: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dyngraph linkpred --model tgn --dataset uci --report runs/demo/report.json

test: $(STAMP)
	$(PY) -m ruff check dyngraph tests examples benchmarks
	$(PY) -m pytest -q -n 2 --durations=15
	# the ops again on the plain-torch backend, so the fallback path stays correct too
	DYNGRAPH_OPS_BACKEND=torch $(PY) -m pytest -q -n 2 tests/test_ops_scatter.py \
		tests/test_ops_segment.py tests/test_ops_softmax.py tests/test_ops_aggregate.py

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/ops.py

lint: $(STAMP)
	$(PY) -m ruff check dyngraph tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

# the documentation site into site/: --strict turns every warning (broken reference, link or
# anchor, docstring problem) into an error; then every relative link of every page is checked
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true OMP_NUM_THREADS=1 \
		PYTHONWARNINGS=ignore::DeprecationWarning \
		$(VENV)/bin/mkdocs build --strict
	$(PY) docs/_gen/check_links.py site

docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs serve
