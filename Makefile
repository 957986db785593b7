# The README's two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch pinned for this machine's local wheels; pyproject keeps ranges users can satisfy.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= results/demo

.PHONY: install demo test bench mutants clean

install: $(VENV)/.installed

# pip byte-compiles every module one file at a time (minutes here); compileall does it on every core.
# The .pyc files must exist: where PYTHONDONTWRITEBYTECODE is set (this CI) nothing caches them later,
# and every process would compile torch again. A few vendored files that are not Python 3 fail: ignored.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-compile $(TORCH_PINS)
	$(BIN)/pip install -q --no-compile -e '.[test]'
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $@

# Three seeds a side, two at a time; run again, it skips what is done and prints the table.
demo: install
	$(BIN)/hem sweep classify --loss ce,hem --seed 0-2 --jobs 2 --out $(DEMO_OUT)

test: install
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python -m bench

mutants: install
	$(BIN)/python dev/mutants.py

clean:
	rm -rf $(VENV) results checkpoints .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
