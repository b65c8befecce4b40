# make test    create .venv if needed, install tinynet with its test extra, run the tests
# make report  same install, run every experiment, write results/ and results/index.html
# make bench   run the benchmarks
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: test report bench clean

$(INSTALLED): setup.cfg pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

test: $(INSTALLED)
	$(PYTHON) -m pytest

report: $(INSTALLED)
	$(PYTHON) -m experiments

bench: $(INSTALLED)
	$(PYTHON) -m benchmarks

clean:
	rm -rf results .pytest_cache .hypothesis
