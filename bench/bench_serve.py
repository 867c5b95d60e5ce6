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

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_finetune import TARGET, bench_args, header, interleaved_seconds, random_classifier, tnews_setup

from wobert.backend import np
from wobert.classifier import ClassifierInfo, save_classifier
from wobert.export import ONNX_FILE, export_onnx
from wobert.finetune import Encoded, batch_inputs, encode_split, length_batches, make_predict_fn, predict


def onnx_runner(path: Path) -> Any:
    """``run(token_ids, segment_ids) -> logits`` of an exported model in ONNX Runtime (CPU; its
    threads do not spin while they wait, which costs more than it saves on a shared machine)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

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
    args = bench_args(__doc__.splitlines()[0])
    setup = tnews_setup(args, "bench_serve")
    if setup is None:
        return 2
    data, config, tokenizers = setup
    models, encoded, agree = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        for kind, tokenizer in tokenizers.items():
            encoded[kind] = encode_split(tokenizer, data.dev, args.maxlen, data)
            model, classifier = random_classifier(config, tokenizer, kind, len(data.labels))
            saved = save_classifier(classifier, model, ClassifierInfo(tuple(data.labels), task="tnews"),
                                    Path(tmp, kind, "model"))
            onnx = onnx_runner(export_onnx(saved, Path(tmp, kind, "onnx")) / ONNX_FILE)
            models[f"{kind} TF"] = (make_predict_fn(classifier), encoded[kind])
            models[f"{kind} ONNX"] = (onnx, encoded[kind])
            tf_labels = predict(models[f"{kind} TF"][0], encoded[kind], args.batch_size)[0].argmax(-1)
            agree[kind] = float(np.mean(labels_of(onnx, encoded[kind], args.batch_size) == tf_labels))
    seconds = interleaved_seconds(models, args.batch_size, args.repeat)

    n = len(data.dev)
    print(header(args, n))
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
