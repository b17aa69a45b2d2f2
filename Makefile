# Two entry points for a newcomer: `make demo` (train and evaluate a model) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test quick-test lint bench docs clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev-installed: pyproject.toml $(BIN)/activate
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml $(BIN)/activate
	$(BIN)/python -m pip install -q -e '.[plot,progress]'
	touch $@

$(VENV)/.docs-installed: pyproject.toml $(BIN)/activate
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python examples/train_fashion_mnist.py

test: $(VENV)/.dev-installed
	$(BIN)/ruff check dezero tests benchmarks examples
	$(BIN)/python -m pytest -n 2 -q

quick-test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n 2 -q -m 'not slow'

# The user guide and API reference as HTML in docs/_build/html; any Sphinx warning fails the build.
docs: $(VENV)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/distributed.py

clean:
	rm -rf $(VENV) build *.egg-info
