# The two commands: `make demo` and `make test`. Both set everything up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean install-systemd

$(STAMP): pyproject.toml
	@echo "== Setting up $(VENV) (the first time takes about a minute; later runs skip this)"
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --progress-bar on pip
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	touch $(STAMP)
	@echo "== $(VENV) is ready: the command is $(BIN)/itaudit (or run '. $(BIN)/activate' once, then 'itaudit')"

demo: $(STAMP)
	$(BIN)/itaudit demo --out demo-output
	@echo "== itaudit is $(BIN)/itaudit; try: $(BIN)/itaudit findings -c demo-output/config.toml"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

install-systemd:  # as root: /opt/itaudit/venv, the itaudit user, /etc/itaudit, the units (docs/agent.md)
	contrib/install-systemd.sh

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
