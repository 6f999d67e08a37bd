# The two commands: `make run` (a host with the example components) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXAMPLES := echo counter greeter

.PHONY: run test lint typecheck unit bench clean chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

examples/%/%.wasm: examples/%/app.py $(VENV)/.installed
	$(PY) -m wactor build $< -o $@

run: $(VENV)/.installed
	@for name in $(EXAMPLES); do \
		$(PY) -m wactor build examples/$$name/app.py -o examples/$$name/$$name.wasm || exit 2; \
	done
	$(PY) -m wactor run examples/wactor.toml

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# The dashboard tests drive Debian's chromium headless; installed here when missing (as root),
# else the tests try the same and fail saying what to install.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; } \
		|| echo "chromium is missing: the dashboard tests need it (apt-get install chromium)"

unit: $(VENV)/.installed chromium
	$(VENV)/bin/pytest

test: lint typecheck unit

bench: $(VENV)/.installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .fixture-cache .pytest_cache .mypy_cache .ruff_cache
