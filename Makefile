# One command sets up and runs the main job; one sets up and runs the tests.
# Each creates the virtual environment .venv when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: train test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Main job. Until training lands (issue 4), it samples a randomly initialised 32x32
# generator and writes a PNG grid to runs/sample/grid.png.
train: $(VENV)/.installed
	$(PY) -m jaxstyle.sample --resolution 32 --seed 0 --out runs/sample/grid.png

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/generator_forward.py

clean:
	rm -rf $(VENV) runs .pytest_cache
