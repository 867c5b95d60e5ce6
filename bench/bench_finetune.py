"""Inference examples/s of a word model against a char model on TNEWS dev (target: >= 1.25x).

Both are classifiers on the same randomly initialised BERT architecture (inference speed does
not depend on the trained weights) and the same maxlen and batch size; only the vocabulary and
tokenizer differ: the char model uses bert-base-chinese's vocab.txt, the word model WoBERT's
(the simplified char vocab + 20,000 jieba words, built here unless ``--word-vocab`` names a
``wobert vocab build`` directory). Batches group examples of similar length, as finetuning
does, so shorter word sequences pay off. Both models hold the same number of batches; they run
batch by batch in turn (char batch i, word batch i, ...), ``--repeat`` times, and each batch's
fastest time counts, so load from other processes hits both alike. Tokenizing is timed
separately (end to end adds it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wobert.backend import np, set_seed
from wobert.finetune import (
    Encoded,
    PretrainedModel,
    batch_inputs,
    build_classifier,
    encode_split,
    length_batches,
    make_predict_fn,
)
from wobert.tasks import load_task
from wobert.tokenizer import BaseTokenizer, CharTokenizer, Tokenizer
from wobert.vocab import VocabSpec, build_vocab

TARGET = 1.25


def word_tokenizer(base_vocab: Path, word_vocab: str | None) -> Tokenizer:
    """The given vocab directory's tokenizer, or WoBERT's recipe built in a temporary directory."""
    if word_vocab:
        return Tokenizer.load(word_vocab)
    with tempfile.TemporaryDirectory() as tmp:
        build_vocab(VocabSpec(base_vocab=str(base_vocab), num_words=20000, curve=[]), tmp)
        return Tokenizer.load(tmp)


def interleaved_seconds(models: dict[str, tuple[Any, Encoded]], batch_size: int,
                        repeat: int) -> dict[str, float]:
    """Forward time of each model over its split: batch i of every model in turn, the fastest
    of ``repeat`` rounds per batch, summed. A model is ``fn(token_ids, segment_ids)`` returning
    an array (or a tensor), with its encoded split."""
    batches = {k: length_batches(enc.lengths, batch_size) for k, (_, enc) in models.items()}
    inputs = {k: [batch_inputs(enc, b) for b in batches[k]] for k, (_, enc) in models.items()}
    best = {k: np.full(len(b), np.inf) for k, b in batches.items()}
    for kind, (fn, _) in models.items():
        fn(*inputs[kind][0])  # trace outside the timing
    for _ in range(repeat):
        for i in range(max(map(len, batches.values()))):
            for kind, (fn, _) in models.items():
                if i < len(inputs[kind]):
                    tick = time.perf_counter()
                    np.asarray(fn(*inputs[kind][i]))
                    best[kind][i] = min(best[kind][i], time.perf_counter() - tick)
    return {k: float(v.sum()) for k, v in best.items()}


def bench_args(description: str) -> argparse.Namespace:
    """The options of the TNEWS dev speed benchmarks (this one and bench_serve)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default="../shared/data",
                        help="shared data directory (clue/tnews, bert-base-chinese)")
    parser.add_argument("--word-vocab", help="word vocabulary directory (default: build WoBERT's recipe)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--maxlen", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per model; the fastest counts")
    return parser.parse_args()


def architecture(layers: int, hidden: int) -> dict[str, Any]:
    """BERT's config at ``layers`` x ``hidden`` (heads of 64, feed-forward 4x, dropout 0.1)."""
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                intermediate_size=4 * hidden, hidden_act="gelu", max_position_embeddings=512,
                type_vocab_size=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def tnews_setup(args: argparse.Namespace, name: str) -> tuple[Any, dict[str, Any], dict[str, BaseTokenizer]] | None:
    """TNEWS, the BERT config of the options and the char and word tokenizers; None (with a
    message) where the shared data is missing."""
    base_vocab = Path(args.data, "bert-base-chinese", "vocab.txt")
    if not base_vocab.is_file() or not Path(args.data, "clue", "tnews", "dev.json").is_file():
        print(f"{name}: {base_vocab} or clue/tnews/dev.json under {args.data} is missing; "
              "nothing to measure", file=sys.stderr)
        return None
    config = architecture(args.layers, args.hidden)
    tokenizers = {"char": CharTokenizer(base_vocab), "word": word_tokenizer(base_vocab, args.word_vocab)}
    return load_task("tnews", args.data), config, tokenizers


def random_classifier(config: dict[str, Any], tokenizer: BaseTokenizer, kind: str,
                      labels: int) -> tuple[PretrainedModel, Any]:
    """A classifier on randomly initialised BERT weights (seed 0) and its model description."""
    set_seed(0)
    model = PretrainedModel(Path("(random)"), dict(config, vocab_size=tokenizer.vocab_size), None, tokenizer, kind)
    return model, build_classifier(model, labels)


def header(args: argparse.Namespace, examples: int) -> str:
    return (f"TNEWS dev: {examples} examples; BERT {args.layers} layers, hidden {args.hidden}, maxlen "
            f"{args.maxlen}, batch {args.batch_size} (length-bucketed), random weights; per batch the "
            f"best of {args.repeat}\n")


def main() -> int:
    args = bench_args(__doc__.splitlines()[0])
    setup = tnews_setup(args, "bench_finetune")
    if setup is None:
        return 2
    data, config, tokenizers = setup

    rows = {}
    for kind, tokenizer in tokenizers.items():
        tokenizer.encode_batch(data.dev.texts()[:100], maxlen=args.maxlen)  # warm up its caches
        start = time.perf_counter()
        encoded = encode_split(tokenizer, data.dev, args.maxlen, data)
        tokenize_s = time.perf_counter() - start
        _, classifier = random_classifier(config, tokenizer, kind, len(data.labels))
        rows[kind] = {"encoded": encoded, "tokenize_s": tokenize_s, "predict": make_predict_fn(classifier)}
    models = {kind: (row["predict"], row["encoded"]) for kind, row in rows.items()}
    for kind, seconds in interleaved_seconds(models, args.batch_size, args.repeat).items():
        rows[kind]["best_s"] = seconds

    n = len(data.dev)
    print(header(args, n))
    print("| model | vocab | tokens/example | inference ex/s | tokenize ex/s | end-to-end ex/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, row in rows.items():
        e2e = n / (row["best_s"] + row["tokenize_s"])
        print(f"| {kind} | {tokenizers[kind].vocab_size} | {row['encoded'].lengths.mean():.1f} | "
              f"{n / row['best_s']:.0f} | {n / row['tokenize_s']:.0f} | {e2e:.0f} |")
    ratio = rows["char"]["best_s"] / rows["word"]["best_s"]
    e2e_ratio = ((rows["char"]["best_s"] + rows["char"]["tokenize_s"])
                 / (rows["word"]["best_s"] + rows["word"]["tokenize_s"]))
    print(f"\nword vs char inference: {ratio:.2f}x (target >= {TARGET}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'}); end to end with tokenizing: {e2e_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
