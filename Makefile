# Two entry points for a fresh machine: `make quickstart` and `make test`. Both do their own set-up.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	bash .ci/setup.sh $(VENV)
	touch $(STAMP)

quickstart: setup
	$(VENV)/bin/dse run studies/quickstart.toml --out runs/quickstart

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
