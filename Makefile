# The README's two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch pinned for this machine's local wheels; pyproject keeps ranges users can satisfy.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= results/demo

.PHONY: install demo test docs bench mutants clean

install: $(VENV)/.installed

# pip byte-compiles every module one file at a time (minutes here); compileall does it on every core.
# The .pyc files must exist: where PYTHONDONTWRITEBYTECODE is set (this CI) nothing caches them later,
# and every process would compile torch again. A few vendored files that are not Python 3 fail: ignored.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-compile $(TORCH_PINS)
	$(BIN)/pip install -q --no-compile -e '.[test,docs]'
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $@

# Three seeds a side, two at a time; run again, it skips what is done and prints the table.
demo: install
	$(BIN)/hem sweep classify --loss ce,hem --seed 0-2 --jobs 2 --out $(DEMO_OUT)

# The docs build takes seconds (about 6 s of CPU here), so `make test` checks it too: a broken link
# or anchor, a page left out of the nav or an unreadable docstring fails it.
test: install
	$(BIN)/python -m pytest -q -ra -n auto --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -q -ra -m serial
	$(BIN)/mkdocs build --strict

# The site from docs/ and mkdocs.yml into site/; --strict: every warning fails the build.
docs: install
	$(BIN)/mkdocs build --strict

bench: install
	$(BIN)/python -m bench

mutants: install
	$(BIN)/python dev/mutants.py

clean:
	rm -rf $(VENV) results checkpoints .pytest_cache build *.egg-info site
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
