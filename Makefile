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

# Main job: the default preset (StyleGAN2 on toyfaces 32x32) into runs/default; resumes if run again.
train: $(VENV)/.installed
	$(PY) train.py --config configs/default.py --workdir runs/default

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/generator_forward.py

clean:
	rm -rf $(VENV) runs .pytest_cache
