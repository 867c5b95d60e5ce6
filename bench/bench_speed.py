"""Word vs char model speed at the same architecture, each ratio beside its FLOP bound.

For each size (default: 2 layers / hidden 128, the demo's, and 4 layers / hidden 256) a char
model (bert-base-chinese's vocab.txt, 21,128 tokens) and a word model (WoBERT's vocabulary:
the simplified base + 20,000 jieba words = 33,585 tokens), randomly initialised alike, are
timed in one process, step by step in turn, so that load from other processes hits both alike:

- pretraining: ``wobert.pretrain.Trainer`` steps on masked records of the same corpus text
  (maxlen 128, batch 32); speed in characters of corpus text per second (tokens trained
  per second times the records' own characters per token);
- finetuning on TNEWS: training steps (batch 32, length-bucketed as ``wobert finetune``)
  and inference on dev (batch 128), in examples per second.

The bound of each ratio is the FLOP ratio (``wobert.flops``) of the very batches timed: char
FLOPs per character (or example) over word FLOPs per character (or example).

What a finetuning step loses against its bound shows in the same run: its forward and backward
passes are timed alone too ("finetune gradients"), and the difference is the AdamW update,
the same work for both models (every dense weight moves, whatever the length).
"""
from __future__ import annotations

import argparse
import functools
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_finetune import architecture, interleaved_seconds

from wobert.backend import np, set_seed, tf
from wobert.finetune import (
    TRAIN_SIGNATURE,
    Encoded,
    FinetuneConfig,
    PretrainedModel,
    batch_inputs,
    build_classifier,
    encode_split,
    length_batches,
    loss_and_gradients,
    make_predict_fn,
    make_train_step,
)
from wobert.finetune_config import SPARSE_MODES
from wobert.flops import classifier_step_flops, pretraining_flops
from wobert.model import build_mlm_model
from wobert.optimization import AdamW
from wobert.pretrain import PretrainConfig, Records, Trainer
from wobert.records import DataOptions, build_records
from wobert.tasks import load_task
from wobert.tokenizer import CharTokenizer, Tokenizer
from wobert.vocab import VocabSpec, build_vocab

KINDS = ("char", "word")
FINETUNE_BATCH = 32
TARGETS = {"finetune train 2x128": 1.15, "finetune train 4x256": 1.20}  # pretraining: 95% of the bound


def corpus_sample(data: Path, out: Path, per_file: int) -> Path:
    """The first ``per_file`` bytes (whole lines) of each corpus file, in one text file."""
    with open(out, "w", encoding="utf-8") as f:
        for path in sorted((data / "corpus").rglob("*.txt")):
            size = 0
            with open(path, encoding="utf-8") as src:
                for line in src:
                    f.write(line)
                    size += len(line.encode("utf-8"))
                    if size >= per_file:
                        break
    return out


def best_of_rounds(steps: dict[str, Callable[[], float]], count: int, rounds: int) -> dict[str, float]:
    """Seconds of ``count`` calls of each step, calling the kinds in turn; the best round counts.
    Each step returns the work it did (tokens or examples), summed over the best round."""
    best = {k: (np.inf, 0.0) for k in steps}
    for _ in range(rounds):
        spent = {k: [0.0, 0.0] for k in steps}
        for _ in range(count):
            for kind, step in steps.items():
                tick = time.perf_counter()
                work = step()
                spent[kind][0] += time.perf_counter() - tick
                spent[kind][1] += work
        for kind, (seconds, work) in spent.items():
            if seconds / work < best[kind][0] / max(best[kind][1], 1e-9) or best[kind][1] == 0:
                best[kind] = (seconds, work)
    return {k: work / seconds for k, (seconds, work) in best.items()}


def pretraining_rows(model: dict[str, Any], records: dict[str, Path], vocab_sizes: dict[str, int],
                     batch: int, steps: int, rounds: int, jit_compile: bool) -> dict[str, dict[str, float]]:
    """Characters of text per second and training FLOPs per character of each kind."""
    train = PretrainConfig(model={}, batch_size=batch, steps=10**6, warmup_steps=10, learning_rate=1e-4,
                           jit_compile=jit_compile)
    runs = {}
    for kind in KINDS:
        set_seed(0)
        config = dict(model, vocab_size=vocab_sizes[kind])
        data = Records(records[kind])
        trainer = Trainer(functools.partial(build_mlm_model, config), train, maxlen=data.manifest.maxlen)
        iterator = iter(data.dataset(batch, seed=0, shuffle=True, skip_batches=0, input_context=None))
        chars_per_token = sum(s.characters for s in data.manifest.shards) / data.manifest.tokens
        # the same stream again, read eagerly: the padded shape of every batch the trainer takes
        shapes = (x["token_ids"].shape for x in data.dataset(batch, seed=0, shuffle=True,
                                                            skip_batches=0, input_context=None))
        runs[kind] = dict(trainer=trainer, iterator=iterator, shapes=shapes, config=config, flops=0.0,
                          tokens=0.0, chars_per_token=chars_per_token,
                          positions=data.manifest.max_predictions, maxlen=data.manifest.maxlen)

    def step(run: dict[str, Any]) -> Callable[[], float]:
        def one() -> float:
            totals, _, _ = run["trainer"].step(run["iterator"])
            b, length = next(run["shapes"])  # under XLA every batch is padded to maxlen
            length = run["maxlen"] if jit_compile else length
            run["flops"] += pretraining_flops(run["config"], b, length, run["positions"])
            run["tokens"] += totals[3]
            return float(totals[3] * run["chars_per_token"])
        return one

    steps_ = {kind: step(run) for kind, run in runs.items()}
    for _ in range(3):  # trace and warm up
        for one in steps_.values():
            one()
    speed = best_of_rounds(steps_, steps, rounds)
    return {k: {"speed": speed[k], "flops_per_unit": r["flops"] / (r["tokens"] * r["chars_per_token"])}
            for k, r in runs.items()}


def finetuning_rows(model: dict[str, Any], encoded: dict[str, tuple[Encoded, Encoded]],
                    vocab_sizes: dict[str, int], labels: int, rounds: int,
                    jit_compile: bool, sparse_adam: str) -> dict[str, dict[str, float]]:
    """Training, forward-and-backward and inference examples per second and FLOPs per example
    of each kind."""
    config = FinetuneConfig(batch_size=FINETUNE_BATCH, eval_batch_size=128)
    runs = {}
    for kind in KINDS:
        set_seed(0)
        bert = dict(model, vocab_size=vocab_sizes[kind])
        classifier = build_classifier(PretrainedModel(Path("(random)"), bert, None, None, kind), labels)
        optimizer = AdamW(classifier.trainable_variables, 2e-5, warmup_steps=10, total_steps=10**6,
                          sparse=sparse_adam)
        gradients = tf.function(loss_and_gradients(classifier, jit_compile), input_signature=TRAIN_SIGNATURE)
        train, dev = encoded[kind]
        batches = length_batches(train.lengths, config.batch_size, np.random.RandomState(0))
        runs[kind] = dict(step=make_train_step(classifier, optimizer, config.clipnorm, jit_compile),
                          gradients=lambda *batch, fn=gradients: fn(*batch)[0],  # computes all gradients
                          predict=make_predict_fn(classifier, jit_compile), config=bert,
                          inputs=[(*batch_inputs(train, b), train.labels[b]) for b in batches])
    for run in runs.values():
        run["step"](*run["inputs"][0])  # trace
        run["gradients"](*run["inputs"][0])
    count = min(len(r["inputs"]) for r in runs.values())
    position = {(k, what): itertools.cycle(range(count)) for k in runs for what in ("step", "gradients")}

    def step(kind: str, what: str) -> Callable[[], float]:
        def one() -> float:
            tokens, segments, gold = runs[kind]["inputs"][next(position[kind, what])]
            runs[kind][what](tokens, segments, gold).numpy()
            return float(len(gold))
        return one

    speed = best_of_rounds({(k, what): step(k, what) for k in runs for what in ("step", "gradients")},
                           count, rounds)
    seconds = interleaved_seconds({k: (r["predict"], encoded[k][1]) for k, r in runs.items()},
                                  config.eval_batch_size, rounds)
    rows = {}
    for kind, run in runs.items():
        timed = run["inputs"][:count]
        examples = sum(len(x[2]) for x in timed)
        train_flops = sum(classifier_step_flops(run["config"], *x[0].shape, labels, True)
                          for x in timed) / examples
        dev = encoded[kind][1]
        infer_flops = sum(classifier_step_flops(run["config"], len(b), int(dev.lengths[b].max()), labels, False)
                          for b in length_batches(dev.lengths, config.eval_batch_size)) / len(dev)
        rows[kind] = {"train": speed[kind, "step"], "gradients": speed[kind, "gradients"],
                      "train_flops": train_flops, "inference": len(dev) / seconds[kind],
                      "inference_flops": infer_flops}
    return rows


def update_line(rows: dict[str, dict[str, float]]) -> str:
    """The AdamW update's seconds per training step (the same work for both kinds: every dense
    weight moves, whatever the length), from the step's speed with and without it."""
    update = {k: FINETUNE_BATCH * (1 / r["train"] - 1 / r["gradients"]) for k, r in rows.items()}
    share = {k: update[k] * r["train"] / FINETUNE_BATCH for k, r in rows.items()}
    return (f" the AdamW update takes {update['char'] * 1e3:.1f} ms of a char step and "
            f"{update['word'] * 1e3:.1f} ms of a word step ({share['char']:.0%} and {share['word']:.0%})")


def ratio_line(name: str, unit: str, char: float, word: float, bound: float) -> str:
    """A table row: both speeds, their ratio, its bound and the target where there is one."""
    ratio = word / char
    target = TARGETS.get(name, 0.95 * bound if name.startswith("pretrain") else None)
    verdict = f" {'met' if ratio >= target else 'NOT met'}: >= {target:.2f}x" if target else ""
    return (f"| {name} | {unit} | {char:,.0f} | {word:,.0f} | **{ratio:.2f}x** | {bound:.2f}x | "
            f"{ratio / bound:.0%} |{verdict} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="shared data (clue/tnews, bert-base-chinese, corpus)")
    parser.add_argument("--sizes", default="2x128,4x256", help="LAYERSxHIDDEN, comma-separated")
    parser.add_argument("--corpus-bytes", type=int, default=300_000, help="text taken from each corpus file")
    parser.add_argument("--train-examples", type=int, default=2048, help="TNEWS training examples timed")
    parser.add_argument("--steps", type=int, default=8, help="pretraining steps per model and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the fastest of each model counts")
    parser.add_argument("--parts", default="pretrain,finetune", help="which parts to run")
    parser.add_argument("--jit-compile", action="store_true", help="train and predict steps by XLA")
    parser.add_argument("--sparse-adam", choices=SPARSE_MODES, default=FinetuneConfig.sparse_adam,
                        help="the embedding tables' update in finetuning (default %(default)s)")
    args = parser.parse_args()
    data = Path(args.data)
    base = data / "bert-base-chinese" / "vocab.txt"
    if not base.is_file() or not (data / "clue" / "tnews" / "dev.json").is_file() or not (data / "corpus").is_dir():
        print(f"bench_speed: {base}, clue/tnews or corpus/ under {data} is missing; nothing to measure",
              file=sys.stderr)
        return 2
    parts = set(args.parts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    build_vocab(VocabSpec(base_vocab=str(base), num_words=20000, curve=[]), tmp / "vocab")
    tokenizers = {"char": CharTokenizer(base), "word": Tokenizer.load(tmp / "vocab")}
    vocab_sizes = {k: t.vocab_size for k, t in tokenizers.items()}
    records = {}
    if "pretrain" in parts:
        corpus = corpus_sample(data, tmp / "corpus.txt", args.corpus_bytes)
        for kind, vocab in (("char", base), ("word", tmp / "vocab")):
            records[kind] = tmp / f"records-{kind}"
            build_records(DataOptions(corpus=[str(corpus)], vocab=str(vocab), maxlen=128, workers=2),
                          records[kind], progress=False)
    encoded = {}
    if "finetune" in parts:
        task = load_task("tnews", data)
        for kind, tokenizer in tokenizers.items():
            encoded[kind] = (encode_split(tokenizer, task.train, 64, task, args.train_examples),
                             encode_split(tokenizer, task.dev, 64, task))

    lines = ["| measure | unit | char | word | word/char | FLOP bound | share of bound | target |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    notes: list[str] = []
    for size in args.sizes.split(","):
        layers, hidden = map(int, size.split("x"))
        model = architecture(layers, hidden)
        name = f"{layers}x{hidden}"
        found, note = [], []
        if "pretrain" in parts:
            rows = pretraining_rows(model, records, vocab_sizes, 32, args.steps, args.rounds,
                                    args.jit_compile)
            bound = rows["char"]["flops_per_unit"] / rows["word"]["flops_per_unit"]
            found.append(ratio_line(f"pretrain {name}", "chars/s", rows["char"]["speed"],
                                    rows["word"]["speed"], bound))
        if "finetune" in parts:
            rows = finetuning_rows(model, encoded, vocab_sizes, len(task.labels), args.rounds,
                                   args.jit_compile, args.sparse_adam)
            for what, flops in (("train", "train"), ("gradients", "train"), ("inference", "inference")):
                bound = rows["char"][f"{flops}_flops"] / rows["word"][f"{flops}_flops"]
                found.append(ratio_line(f"finetune {what} {name}", "examples/s", rows["char"][what],
                                        rows["word"][what], bound))
            note.append(f"finetune {name}:" + update_line(rows))
        print("\n".join(found + note), flush=True)
        notes += note
        lines += found
    print(f"\nvocab: char {vocab_sizes['char']:,}, word {vocab_sizes['word']:,} tokens; pretraining on "
          f"{args.corpus_bytes:,} bytes of each shared corpus file (maxlen 128, batch 32); TNEWS: "
          f"{args.train_examples} training examples (batch {FINETUNE_BATCH}), all dev (batch 128), maxlen 64; "
          f"best of {args.rounds} rounds, steps of both models in turn; 'finetune gradients': the training "
          f"step's forward and backward passes without the update\n")
    print("\n".join(lines + [""] + notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
