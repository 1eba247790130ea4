# The two commands a newcomer needs (each does its own set-up, as root):
#   make demo   - the PPU lab with the controller, default topology and policies
#   make test   - the whole test suite (unit tests and lab tests)
VENV ?= .venv

.PHONY: demo test unit setup bench
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/kendali demo

test: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

unit: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not lab"

bench: setup
	$(VENV)/bin/kendali bench
