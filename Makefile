# make test    create .venv if needed, install tinynet with the course's extras, run ruff and the tests
# make report  same install, run every experiment, write results/ and results/index.html
# make lint    ruff check . (rules and line length in pyproject.toml)
# make bench   run the benchmarks, write results/benchmarks/metrics.json for the report
# make report-screenshot  render the top of results/index.html to results/report-top.png
#               with headless Chromium (Debian: apt-get install chromium)
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: test lint report bench report-screenshot clean

# uv installs the same packages as pip in less than half the time (parallel downloads); pip where uv cannot be had
# or cannot reach an index (uv does not read pip.conf: a machine with only a private mirror falls back to pip).
# Both compile the installed modules' bytecode, and compileall the project's: with PYTHONDONTWRITEBYTECODE set no
# process writes it, and every experiment and test process would compile them from source again.
$(INSTALLED): setup.cfg pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	( $(PYTHON) -m pip install --quiet uv && VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install --quiet --compile-bytecode -e '.[experiments,test]' ) \
		|| $(PYTHON) -m pip install --quiet -e '.[experiments,test]'
	$(PYTHON) -m compileall -q -j 0 tinynet coursedata facescrub experiments benchmarks tests > /dev/null
	touch $(INSTALLED)

test: $(INSTALLED)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest

lint: $(INSTALLED)
	$(PYTHON) -m ruff check .

report: $(INSTALLED)
	$(PYTHON) -m experiments

bench: $(INSTALLED)
	$(PYTHON) -m benchmarks --out results/benchmarks

report-screenshot:
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
		--disable-sync --no-first-run --hide-scrollbars --user-data-dir=$$(mktemp -d) --window-size=1200,900 \
		--screenshot=$(CURDIR)/results/report-top.png file://$(CURDIR)/results/index.html

clean:
	rm -rf results .pytest_cache .hypothesis
