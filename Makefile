# Two entry points for a fresh machine: `make quickstart` and `make test`. Both do their own set-up.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test clean

setup: $(STAMP)

$(STAMP): pyproject.toml .ci/setup.sh
	bash .ci/setup.sh $(VENV)
	touch $(STAMP)

# The study, then its top 3 picks built and run on the emulated Cortex-M4. A pick that fails validation (does not
# fit, ...) is a recorded result (exit 1), not a broken quickstart; anything else (exit 2+) is.
quickstart: setup
	$(VENV)/bin/dse run studies/quickstart.toml --out runs/quickstart
	$(VENV)/bin/dse validate runs/quickstart --picks 3 --board qemu-an386; rc=$$?; [ $$rc -le 1 ]

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
