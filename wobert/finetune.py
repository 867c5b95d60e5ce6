"""Finetune a pretrained BERT (a wobert export, any Google-format checkpoint or a Hugging Face
BERT directory) on a task.

``load_pretrained`` reads a model directory (bert_config.json, vocab.txt, bert_model.ckpt*,
or the Hugging Face layout: config.json, vocab.txt, model.safetensors; tokenizer_config.json
for a word model) and refuses a vocab that does not match the model.
``encode_task`` tokenizes every split once (``encode_batch``); ``finetune`` trains a pooled or
[CLS] softmax classifier with AdamW, evaluates on dev, stops early, keeps the best weights in
memory, predicts the test file and writes ``result.json``. Batches group examples of similar
length and are padded to their longest member, so shorter (word-level) sequences cost less.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from wobert.backend import TruncatedNormal, build_bert, keras, np, set_seed, tf
from wobert.checks import check_output_dir
from wobert.errors import UserError
from wobert.finetune_config import FinetuneConfig
from wobert.jsonfile import write_json
from wobert.model import ARCHITECTURE, find_bert_checkpoint
from wobert.optimization import AdamW, clip_scale, global_norm
from wobert.tasks import Split, TaskData, holdout, predictions_file, write_predictions
from wobert.tokenizer import BaseTokenizer, load_tokenizer


@dataclass
class PretrainedModel:
    """A model directory: its BERT config, checkpoint prefix and matching tokenizer."""

    path: Path
    config: dict[str, Any]
    checkpoint: str | None  # None: random initialisation (benchmarks)
    tokenizer: BaseTokenizer
    kind: str  # the tokenizer's level: "word" or "char"


@dataclass
class Encoded:
    """Token ids of one split (unpadded), gold label indices (``None`` if unlabelled) and ids."""

    token_ids: list[list[int]]
    segment_ids: list[list[int]]
    labels: np.ndarray | None
    ids: list[Any]
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = np.array([len(t) for t in self.token_ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.token_ids)


def load_pretrained(model_dir: str | Path) -> PretrainedModel:
    """Read a model directory and check that its tokenizer's vocab fits the model's embedding."""
    path = Path(model_dir)
    config, checkpoint = find_bert_checkpoint(path)
    tokenizer = load_tokenizer(path)
    if tokenizer.vocab_size != config["vocab_size"]:
        raise UserError(
            f"{path}: the tokenizer's vocab.txt has {tokenizer.vocab_size} tokens but "
            f"bert_config.json says vocab_size {config['vocab_size']}: vocab and model do not match"
        )
    return PretrainedModel(path, config, checkpoint, tokenizer, tokenizer.level)


def encode_split(tokenizer: BaseTokenizer, split: Split, maxlen: int, data: TaskData,
                 limit: int | None = None) -> Encoded:
    """Tokenize a split in one ``encode_batch`` call; labels become indices into ``data.labels``."""
    examples = split.examples if limit is None else split.examples[:limit]
    sub = Split(split.path, examples)
    pairs = tokenizer.encode_batch(sub.texts(), sub.pairs(), maxlen=maxlen)
    labels = np.array(data.label_ids(sub), dtype=np.int32) if sub.labelled else None
    return Encoded([p[0] for p in pairs], [p[1] for p in pairs], labels, sub.ids())


def encode_task(tokenizer: BaseTokenizer, data: TaskData, config: FinetuneConfig) -> dict[str, Encoded]:
    """Encode train, dev and (if wanted) test once; a task without dev holds out 10% of train."""
    train, dev = data.train, data.dev
    if train is None:
        raise UserError(f"task {data.spec.name} has no training file (looked for "
                        f"{', '.join(data.spec.train)})")
    if dev is None:
        train, dev = holdout(train, 0.1, seed=0)
    for split in (train, dev):
        if not len(split):
            raise UserError(f"{split.path}: no examples to train or evaluate on")
    encoded = {
        "train": encode_split(tokenizer, train, config.maxlen, data, config.max_train),
        "dev": encode_split(tokenizer, dev, config.maxlen, data, config.max_dev),
    }
    if config.predict_test and data.test is not None and len(data.test):
        encoded["test"] = encode_split(tokenizer, data.test, config.maxlen, data)
    return encoded


def build_classifier(model: PretrainedModel, num_labels: int, pooling: str = "pool",
                     dropout: float = 0.1) -> keras.Model:
    """BERT from the checkpoint + dropout + softmax over ``num_labels`` on the pooled or [CLS] vector."""
    bert = build_bert(model.config, model.checkpoint, with_pool=pooling == "pool").model
    x = bert.output
    if pooling == "cls":
        x = keras.layers.Lambda(lambda h: h[:, 0], name="CLS")(x)
    x = keras.layers.Dropout(dropout, name="Classifier-Dropout")(x)
    probs = keras.layers.Dense(num_labels, activation="softmax",
                               kernel_initializer=TruncatedNormal(0.02), name="Classifier")(x)
    return keras.Model(bert.inputs, probs)


def length_batches(lengths: np.ndarray, batch_size: int,
                   rng: np.random.RandomState | None = None) -> list[np.ndarray]:
    """Index batches of similar lengths. With ``rng`` (training): shuffle, sort by length within
    chunks of 50 batches, shuffle the batches; without: sorted by length over the whole split."""
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order, chunk, batches = rng.permutation(len(lengths)), batch_size * 50, []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def pad_batch(sequences: Sequence[Sequence[int]], index: np.ndarray) -> np.ndarray:
    """The selected sequences as an int32 array padded with 0 to the longest of them."""
    rows = [sequences[i] for i in index]
    out = np.zeros((len(rows), max(map(len, rows))), dtype=np.int32)
    for row, seq in zip(out, rows):
        row[:len(seq)] = seq
    return out


def batch_inputs(encoded: Encoded, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pad_batch(encoded.token_ids, index), pad_batch(encoded.segment_ids, index)


SPEC = tf.TensorSpec([None, None], tf.int32)
TRAIN_SIGNATURE = [SPEC, SPEC, tf.TensorSpec([None], tf.int32)]  # token ids, segment ids, labels


XLA_MULTIPLE = 8  # under XLA, batches are padded to a multiple of this many tokens


def xla_compiled(fn: Any) -> Any:
    """``fn(tokens, segments, *rest)`` compiled by XLA, on batches padded to a multiple of
    XLA_MULTIPLE tokens: XLA compiles once per shape, and so for few shapes."""
    compiled = tf.function(fn, jit_compile=True)

    def padded(tokens: tf.Tensor, segments: tf.Tensor, *rest: tf.Tensor) -> Any:
        pad = [[0, 0], [0, -tf.shape(tokens)[1] % XLA_MULTIPLE]]
        return compiled(tf.pad(tokens, pad), tf.pad(segments, pad), *rest)

    return padded


def make_predict_fn(model: keras.Model, jit_compile: bool = False) -> Any:
    """A traced forward pass for any batch shape (``jit_compile``: by XLA)."""
    forward = lambda t, s: model([t, s], training=False)  # noqa: E731
    return tf.function(xla_compiled(forward) if jit_compile else forward, input_signature=[SPEC, SPEC])


def predict(predict_fn: Any, encoded: Encoded, batch_size: int) -> tuple[np.ndarray, float]:
    """Class probabilities in the split's order and the seconds the forward passes took."""
    batches = length_batches(encoded.lengths, batch_size)
    predict_fn(*batch_inputs(encoded, batches[0][:1]))  # trace outside the timing
    probs: np.ndarray | None = None
    seconds = 0.0
    for index in batches:
        inputs = batch_inputs(encoded, index)
        tick = time.perf_counter()
        out = predict_fn(*inputs).numpy()
        seconds += time.perf_counter() - tick
        if probs is None:
            probs = np.zeros((len(encoded), out.shape[-1]), dtype=np.float32)
        probs[index] = out
    return probs, seconds


def accuracy_and_macro_f1(gold: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Accuracy, and F1 averaged over the classes present in ``gold`` or ``pred``."""
    f1s = []
    for c in np.union1d(gold, pred):
        tp = np.sum((pred == c) & (gold == c))
        f1s.append(2 * tp / (np.sum(pred == c) + np.sum(gold == c)))
    return float(np.mean(gold == pred)), float(np.mean(f1s))


def majority_baseline(train: Encoded, dev: Encoded) -> float:
    """Dev accuracy of always answering the most frequent training label."""
    return float(np.mean(dev.labels == np.bincount(train.labels).argmax()))


def loss_and_gradients(model: keras.Model, jit_compile: bool = False) -> Any:
    """``fn(tokens, segments, labels)``: the mean cross-entropy of a batch in training mode and
    its gradients, aligned with ``model.trainable_variables`` (the forward and backward passes
    of a training step, without the update; ``jit_compile``: by XLA)."""
    variables = model.trainable_variables

    def gradients(tokens: tf.Tensor, segments: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, list]:
        with tf.GradientTape() as tape:
            probs = model([tokens, segments], training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probs))
        return loss, tape.gradient(loss, variables)

    return xla_compiled(gradients) if jit_compile else gradients


def make_train_step(model: keras.Model, optimizer: AdamW, clipnorm: float | None,
                    jit_compile: bool = False) -> Any:
    """A traced optimizer step on the mean cross-entropy of a batch (clipped by global norm;
    a step whose gradient norm is not finite changes nothing). ``jit_compile``: the forward
    and backward passes by XLA (the update stays outside: lazy rows have dynamic shapes)."""
    tables = [model.get_layer(name).embeddings for name in ("Embedding-Token", "Embedding-Segment")]
    gradients = loss_and_gradients(model, jit_compile)

    @tf.function(input_signature=TRAIN_SIGNATURE)
    def step(tokens: tf.Tensor, segments: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        optimizer.catch_up(list(zip(tables, (tokens, segments))))  # the rows this batch reads
        loss, grads = gradients(tokens, segments, labels)
        grads = optimizer.prepare(grads)
        norm = global_norm(grads)
        optimizer.apply(grads, clip_scale(norm, clipnorm), tf.math.is_finite(norm))
        return loss

    return step


def evaluate(predict_fn: Any, dev: Encoded, batch_size: int) -> tuple[float, float, float]:
    """Dev accuracy, macro-F1 and the seconds the forward passes took."""
    probs, seconds = predict(predict_fn, dev, batch_size)
    return (*accuracy_and_macro_f1(dev.labels, probs.argmax(-1)), seconds)


@dataclass
class TrainLog:
    """What a training loop saw: dev evaluations, the best one and its weights, timings."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"accuracy": -1.0})
    best_weights: list[np.ndarray] | None = None
    stopped_early: bool = False
    steps: int = 0
    train_examples_per_s: float | None = None  # the fastest epoch's (a traced step left out)
    dev_seconds: float = math.inf  # the fastest dev pass: the least disturbed by noise


def train_classifier(classifier: keras.Model, train: Encoded, dev: Encoded,
                     config: FinetuneConfig, desc: str = "") -> TrainLog:
    """AdamW with warm-up and linear decay; evaluate every ``eval_every`` steps (or epoch),
    stop after ``patience`` evaluations without a better dev accuracy, keep the best weights."""
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = AdamW(classifier.trainable_variables, config.lr, weight_decay=config.weight_decay,
                      warmup_steps=int(config.warmup * total_steps), total_steps=total_steps,
                      sparse=config.sparse_adam)
    train_step = make_train_step(classifier, optimizer, config.clipnorm, config.jit_compile)
    predict_fn = make_predict_fn(classifier, config.jit_compile)
    eval_every = config.eval_every or steps_per_epoch
    rng = np.random.RandomState(config.seed)
    log, waited, losses = TrainLog(best_weights=classifier.get_weights()), 0, []
    for epoch in range(1, config.epochs + 1):
        bar = tqdm(length_batches(train.lengths, config.batch_size, rng), disable=None,
                   desc=f"{desc} epoch {epoch}/{config.epochs}", file=sys.stderr)
        trained, train_seconds = 0, 0.0
        for index in bar:
            inputs = (*batch_inputs(train, index), train.labels[index])
            tick = time.perf_counter()
            losses.append(float(train_step(*inputs)))
            if log.steps:  # the first step traces the graph: leave it out of the speed
                train_seconds += time.perf_counter() - tick
                trained += len(index)
            log.steps += 1
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            if log.steps % eval_every and log.steps != total_steps:
                continue
            optimizer.settle()
            acc, f1, seconds = evaluate(predict_fn, dev, config.eval_batch_size)
            log.dev_seconds = min(log.dev_seconds, seconds)
            log.history.append({"epoch": epoch, "step": log.steps, "loss": float(np.mean(losses)),
                                "dev_accuracy": acc, "dev_macro_f1": f1})
            losses = []
            waited = waited + 1 if acc <= log.best["accuracy"] else 0
            if not waited:
                log.best = {"accuracy": acc, "macro_f1": f1, "step": log.steps, "epoch": epoch}
                log.best_weights = classifier.get_weights()
            bar.write(f"step {log.steps}: dev accuracy {acc:.4f}, macro-F1 {f1:.4f}"
                      + ("" if waited else " (best)"), file=sys.stderr)
            log.stopped_early = waited >= config.patience
            if log.stopped_early:
                break
        if train_seconds:
            log.train_examples_per_s = max(log.train_examples_per_s or 0.0, trained / train_seconds)
        bar.close()
        if log.stopped_early:
            break
    return log


def finetune(
    model: PretrainedModel,
    data: TaskData,
    encoded: dict[str, Encoded],
    config: FinetuneConfig,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train, restore the weights of the best dev evaluation, measure speed, predict test.

    Writes ``result.json`` (and ``<task>_predict.json`` for a test file) to ``out_dir`` when
    given; returns the result dict.
    """
    if out_dir is not None:
        check_output_dir(out_dir)
    maxpos = model.config.get("max_position_embeddings", 512)
    if config.maxlen > maxpos:
        raise UserError(f"maxlen {config.maxlen} exceeds the model's max_position_embeddings {maxpos}")
    train, dev = encoded["train"], encoded["dev"]
    started = time.perf_counter()
    keras.backend.clear_session()
    set_seed(config.seed)
    classifier = build_classifier(model, len(data.labels), config.pooling, config.dropout)
    log = train_classifier(classifier, train, dev, config, f"{data.spec.name} {model.kind}")
    classifier.set_weights(log.best_weights)
    predict_fn = make_predict_fn(classifier, config.jit_compile)
    acc, f1, seconds = evaluate(predict_fn, dev, config.eval_batch_size)
    result: dict[str, Any] = {
        "task": data.spec.name,
        "model": str(model.path),
        "tokenizer": model.kind,
        "architecture": architecture(model.config),
        "config": asdict(config),
        "data": data.summary(),
        "labels": data.labels,
        "examples": {k: len(v) for k, v in encoded.items()},
        "majority_baseline": majority_baseline(train, dev),
        "dev_accuracy": acc,
        "dev_macro_f1": f1,
        "best": log.best,
        "stopped_early": log.stopped_early,
        "steps": log.steps,
        "history": log.history,
        "tokens_per_example": {k: float(v.lengths.mean()) for k, v in encoded.items()},
        # examples that reach maxlen (most of them were cut)
        "share_at_maxlen": {k: float(np.mean(v.lengths >= config.maxlen)) for k, v in encoded.items()},
        "train_examples_per_s": log.train_examples_per_s,
        "inference_examples_per_s": len(dev) / min(log.dev_seconds, seconds),
    }
    out = Path(out_dir) if out_dir is not None else None
    if "test" in encoded:
        result.update(predict_test_split(predict_fn, encoded["test"], data, config.eval_batch_size, out))
    result["wall_s"] = time.perf_counter() - started
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if config.save_model:
            from wobert.classifier import ClassifierInfo, save_classifier  # it builds on this module

            info = ClassifierInfo(tuple(data.labels), config.pooling, data.spec.name)
            result["saved_model"] = str(save_classifier(classifier, model, info, out / "model"))
        write_json(out / "result.json", result)
    return result


def predict_test_split(predict_fn: Any, test: Encoded, data: TaskData, batch_size: int,
                 out: Path | None) -> dict[str, Any]:
    """Predict the test split: write ``<task>_predict.json`` to ``out``; score it if labelled."""
    pred = predict(predict_fn, test, batch_size)[0].argmax(-1)
    result: dict[str, Any] = {}
    if test.labels is not None:
        result["test_accuracy"], result["test_macro_f1"] = accuracy_and_macro_f1(test.labels, pred)
    if out is not None:
        path = write_predictions(out / predictions_file(data.spec.name), test.ids,
                                 [data.labels[i] for i in pred])
        result["predictions"] = str(path)
    return result


def architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture keys of a BERT config (everything but the vocabulary and dropout)."""
    return {k: config.get(k) for k in ARCHITECTURE + ("hidden_act",)}
