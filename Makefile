# The two commands a newcomer needs (each does its own set-up, as root):
#   make demo   - the PPU lab with the controller, default topology and policies
#   make test   - the whole test suite (unit tests and lab tests)
VENV ?= .venv

.PHONY: demo test unit lint setup bench
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/kendali demo

test: setup lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

unit: setup lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not lab"

# ruff (formatting, style, imports, likely bugs) on the whole repo; mypy on controller/ (strict on controller/core).
lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/kendali bench
