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

# llama-cpp-python compiles llama.cpp (4-8 minutes on 2 cores): its wheel is built once into
# $(WHEELS) and reused by every later install. It is built portable (AVX2, no -march=native):
# a CPU-tuned build used AMX here and crashed on a VM that refuses it. --no-cache-dir because
# pip's own wheel cache ignores CMAKE_ARGS and would hand back a CPU-tuned build.
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
$(STAMP): setup.py requirements-nodeps.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	mkdir -p $(WHEELS)
	ls $(WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip wheel -q --no-deps --no-cache-dir \
			--no-binary llama-cpp-python -w $(WHEELS) $(LLAMA)
	$(BIN)/pip install -q --find-links $(WHEELS) -e '.[test,llm]'
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

# The main job on the bundled MovieLens-100k (sllmr-main): prepare -> score with the MiniLM
# embedding scorer, with the LLM reliability report -> train and evaluate base, kd and sllmr on
# DeepFM (3 seeds) -> export the sllmr run -> the closing comparison. A rerun reuses every stage.
demo: $(STAMP)
	$(BIN)/sllmr-main --work_dir=$(WORK)/demo

# Two test processes (the suite is mostly one thread at a time); a file's tests stay in one
# process, so its module fixtures (trained runs) are built once.
TEST_PROCESSES := -n 2 --dist loadfile

test: $(STAMP)
	$(BIN)/pytest $(TEST_PROCESSES) tests

test-fast: $(STAMP)
	$(BIN)/pytest $(TEST_PROCESSES) -m "not slow" -x tests

# Every benchmark table (BUILD_NOTES.md records the figures). Reuses the demo's data.
bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m sllmr_tf.bench.input
	$(BIN)/python -m sllmr_tf.bench.prepare_scale --scales=1,10  # 100x: add it by hand (about an hour)
	$(BIN)/sllmr-prepare --flagfile=flags/prepare_movielens100k.flags --data_dir=$(WORK)/ml100k
	$(BIN)/sllmr-score --flagfile=flags/score_embedding.flags --data_dir=$(WORK)/ml100k \
		--pairs_dir=$(WORK)/ml100k_pairs
	$(BIN)/python -m sllmr_tf.bench.score_embedding --data_dir=$(WORK)/ml100k
	$(BIN)/python -m sllmr_tf.bench.score_llama --data_dir=$(WORK)/ml100k
	$(BIN)/python -m sllmr_tf.bench.train_throughput --data_dir=$(WORK)/ml100k --pairs_dir=$(WORK)/ml100k_pairs
	$(BIN)/python -m sllmr_tf.bench.backbones_vs_deepctr --data_dir=$(WORK)/ml100k
	$(BIN)/python -m sllmr_tf.bench.serving --data_dir=$(WORK)/ml100k --pairs_dir=$(WORK)/ml100k_pairs \
		--work_dir=$(WORK)/bench_serving
	$(BIN)/sllmr-train --flagfile=flags/train_protocol.flags --data_dir=$(WORK)/ml100k --method=base \
		--model_dir=$(WORK)/bench_base
	$(BIN)/python -m sllmr_tf.bench.teacher_diagnostics --model_dir=$(WORK)/bench_base --data_dir=$(WORK)/ml100k \
		--pairs_dir=$(WORK)/ml100k_pairs --scorer=embedding

clean:
	rm -rf $(VENV) $(WORK) *.egg-info
