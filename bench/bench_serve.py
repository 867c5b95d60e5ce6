"""Serving speed: examples/s of a word vs a char classifier in ONNX Runtime on TNEWS dev (target:
>= 1.25x), beside TensorFlow, in the same run.

Both classifiers have bench_finetune's random BERT architecture (4 layers, hidden 256, maxlen 64)
and go the user's way: ``wobert finetune --save-model``'s directory (``save_classifier``), then
``wobert export --format onnx`` (through the Hugging Face export). Char: bert-base-chinese's
vocab.txt; word: WoBERT's (simplified + 20,000 jieba words). Dev is tokenized once and sorted by
length into batches of 128 (length-bucketed, as finetuning evaluates); batch i of every model
(TF char, TF word, ONNX char, ONNX word) runs in turn, ``--repeat`` rounds, the fastest per
batch counts. ONNX Runtime's predicted labels are checked against TensorFlow's on all of dev.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_finetune import TARGET, interleaved_seconds, word_tokenizer
from wobert.backend import np, set_seed
from wobert.classifier import ClassifierInfo, save_classifier
from wobert.export import ONNX_FILE, export_onnx
from wobert.finetune import (
    Encoded, PretrainedModel, batch_inputs, build_classifier, encode_split, length_batches,
    make_predict_fn, predict,
)
from wobert.tasks import load_task
from wobert.tokenizer import BaseTokenizer, CharTokenizer


def onnx_runner(path: Path) -> Any:
    """``run(token_ids, segment_ids) -> logits`` of an exported model in ONNX Runtime (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(tokens: np.ndarray, segments: np.ndarray) -> np.ndarray:
        return session.run(None, {"input_ids": tokens.astype(np.int64),
                                  "attention_mask": (tokens != 0).astype(np.int64),
                                  "token_type_ids": segments.astype(np.int64)})[0]

    return run


def labels_of(run: Any, encoded: Encoded, batch_size: int) -> np.ndarray:
    """Predicted label of every example, in the split's order."""
    labels = np.zeros(len(encoded), dtype=np.int64)
    for index in length_batches(encoded.lengths, batch_size):
        labels[index] = np.asarray(run(*batch_inputs(encoded, index))).argmax(-1)
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="shared data directory (clue/tnews, bert-base-chinese)")
    parser.add_argument("--word-vocab", help="word vocabulary directory (default: build WoBERT's recipe)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--maxlen", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per model; the fastest counts")
    args = parser.parse_args()
    base_vocab = Path(args.data, "bert-base-chinese", "vocab.txt")
    if not base_vocab.is_file() or not Path(args.data, "clue", "tnews", "dev.json").is_file():
        print(f"bench_serve: {base_vocab} or clue/tnews/dev.json under {args.data} is missing; "
              "nothing to measure", file=sys.stderr)
        return 2
    data = load_task("tnews", args.data)
    config = dict(hidden_size=args.hidden, num_hidden_layers=args.layers,
                  num_attention_heads=max(1, args.hidden // 64), intermediate_size=4 * args.hidden,
                  hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2)
    tokenizers: dict[str, BaseTokenizer] = {
        "char": CharTokenizer(base_vocab), "word": word_tokenizer(base_vocab, args.word_vocab)}
    models, encoded, agree = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        for kind, tokenizer in tokenizers.items():
            encoded[kind] = encode_split(tokenizer, data.dev, args.maxlen, data)
            set_seed(0)
            model = PretrainedModel(Path("(random)"), dict(config, vocab_size=tokenizer.vocab_size),
                                    None, tokenizer, kind)
            classifier = build_classifier(model, len(data.labels))
            saved = save_classifier(classifier, model, ClassifierInfo(tuple(data.labels), task="tnews"),
                                    Path(tmp, kind, "model"))
            onnx = onnx_runner(export_onnx(saved, Path(tmp, kind, "onnx")) / ONNX_FILE)
            models[f"{kind} TF"] = (make_predict_fn(classifier), encoded[kind])
            models[f"{kind} ONNX"] = (onnx, encoded[kind])
            tf_labels = predict(models[f"{kind} TF"][0], encoded[kind], args.batch_size)[0].argmax(-1)
            agree[kind] = float(np.mean(labels_of(onnx, encoded[kind], args.batch_size) == tf_labels))
    seconds = interleaved_seconds(models, args.batch_size, args.repeat)

    n = len(data.dev)
    print(f"TNEWS dev: {n} examples; BERT {args.layers} layers, hidden {args.hidden}, maxlen {args.maxlen}, "
          f"batch {args.batch_size} (length-bucketed), random weights; per batch the best of {args.repeat}\n")
    print("| model | vocab | tokens/example | TF ex/s | ONNX Runtime ex/s | ONNX vs TF | ONNX labels = TF's |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, tokenizer in tokenizers.items():
        tf_s, onnx_s = seconds[f"{kind} TF"], seconds[f"{kind} ONNX"]
        print(f"| {kind} | {tokenizer.vocab_size} | {encoded[kind].lengths.mean():.1f} | {n / tf_s:.0f} | "
              f"{n / onnx_s:.0f} | {tf_s / onnx_s:.2f}x | {agree[kind]:.2%} |")
    ratio = seconds["char ONNX"] / seconds["word ONNX"]
    tf_ratio = seconds["char TF"] / seconds["word TF"]
    print(f"\nword vs char in ONNX Runtime: {ratio:.2f}x (target >= {TARGET}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'}); in TensorFlow: {tf_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
