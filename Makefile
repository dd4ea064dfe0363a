# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
WHEELS ?= $(HOME)/.cache/sllmr-wheels
WORK   ?= work_dir
STAMP  := $(VENV)/.installed-stamp
LLAMA  := llama-cpp-python==0.3.36

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

# llama-cpp-python compiles llama.cpp (about 4 minutes on 2 cores): its wheel is built once
# into $(WHEELS) and reused by every later install.
$(STAMP): setup.py requirements-nodeps.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	mkdir -p $(WHEELS)
	ls $(WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || \
		$(BIN)/pip wheel -q --no-deps -w $(WHEELS) $(LLAMA)
	$(BIN)/pip install -q --find-links $(WHEELS) -e '.[test,llm]'
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

demo: $(STAMP)
	$(BIN)/sllmr-prepare --flagfile=flags/prepare_movielens100k.flags --data_dir=$(WORK)/ml100k

test: $(STAMP)
	$(BIN)/pytest tests

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -x tests

bench: $(STAMP)
	$(BIN)/python -m sllmr_tf.bench.input --data_dir=$(WORK)/ml100k

clean:
	rm -rf $(VENV) $(WORK) *.egg-info
