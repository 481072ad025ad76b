# Quick start: `make run` (set up, then the main job) and `make test` (set up, then the tests).
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data/synthetic

.PHONY: setup run test test-slow bench data data-real demo real-model clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

# The main job: the viewer on the bundled demo model; headless it writes screenshots.
run: setup
	bash scripts/run_main.sh

# Lint (with a complexity limit), formatting, types, then the tests.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	bash scripts/with_display.sh $(PY) -m pytest -q

test-slow: setup
	bash scripts/with_display.sh $(PY) -m pytest -q -m slow

bench: setup
	bash scripts/with_display.sh $(PY) -m benchmarks.run_all

data: setup
	$(PY) main.py preprocess --source synthetic --out $(DATA) --workers 2

# Real objects: Debian's Sweet Home 3D furniture libraries, preprocessed (reserved models skipped).
data-real: setup
	bash scripts/install_furniture.sh
	$(PY) main.py preprocess --source sweethome3d --out data/sweethome3d --workers 2

demo: setup
	bash scripts/make_demo.sh

real-model: setup
	bash scripts/make_real_model.sh

clean:
	rm -rf $(VENV) .pytest_cache
