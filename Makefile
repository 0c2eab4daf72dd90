# The README's two commands: `make demo` (main job) and `make test` (test suite).
# Each sets up .venv/ itself on a fresh machine.
.PHONY: venv demo test lint bench

venv:
	@bash tools/setup-venv.sh

demo: venv
	.venv/bin/actionimages demo

test: venv
	.venv/bin/ruff check src tests benchmarks scripts
	.venv/bin/python -m pytest

lint: venv
	.venv/bin/ruff check src tests benchmarks scripts
	.venv/bin/ruff format --check src tests benchmarks scripts

bench: venv
	.venv/bin/python benchmarks/codec.py
