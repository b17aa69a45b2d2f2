# Two entry points for a newcomer: `make demo` (train and evaluate a model) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test quick-test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev-installed: pyproject.toml $(BIN)/activate
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml $(BIN)/activate
	$(BIN)/python -m pip install -q -e '.[plot,progress]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python examples/train_fashion_mnist.py

test: $(VENV)/.dev-installed
	$(BIN)/ruff check dezero tests benchmarks examples
	$(BIN)/python -m pytest -n 2 -q

quick-test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n 2 -q -m 'not slow'

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
