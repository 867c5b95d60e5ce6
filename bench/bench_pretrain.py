"""Pretraining speed: our training step against a WoBERT-style bert4keras step.

Both train the same BERT (default: 4 layers, hidden 256, 4 heads, vocab 33,585, sequences of
128 tokens, 15% masked) with AdamW (the same hyper-parameters, clipping at global norm 1), on
the same synthetic batch, in one process:

- ours (``wobert.pretrain.Trainer``): encoder, the last layer's queries onwards and the MLM
  head (dense, LayerNorm, tied output, bias) only at the ``max_predictions`` gathered masked
  positions; AdamW in one XLA kernel per variable (``wobert.optimization``);
- WoBERT-style (WoBERT's train.py): ``build_transformer_model(..., with_mlm=True)``, softmax
  over the whole vocabulary at every position, sparse cross-entropy weighted by the mask,
  bert4keras's AdamW.

Prints a markdown table: seconds per step, tokens/s, the model's training FLOPs per step
(``wobert.flops``: 3 x forward, i.e. ~6 x weights x tokens plus attention and head),
achieved FLOP/s and its share of the matmul peak measured in the same run (the best of a
large ``tf.matmul`` timed before and after the steps). Targets: ours >= 2.8x the tokens/s of
the WoBERT-style step and >= 60% of the matmul peak. CPU float32.
"""
from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from typing import Any

from wobert.backend import adamw, build_transformer_model, keras, np, tf
from wobert.flops import pretraining_flops
from wobert.model import build_mlm_model
from wobert.pretrain import PretrainConfig, Trainer

TARGET, PEAK_SHARE = 2.8, 0.60


def synthetic_batch(batch: int, length: int, predictions: int, vocab: int,
                    mask_rate: float = 0.15) -> dict[str, np.ndarray]:
    """Full-length sequences with ``mask_rate`` of the positions masked (like the records)."""
    rng = np.random.RandomState(0)
    original = rng.randint(5, vocab, (batch, length)).astype(np.int32)
    count = min(predictions, math.ceil(length * mask_rate))
    positions = np.zeros((batch, predictions), np.int32)
    weights = np.zeros((batch, predictions), np.float32)
    for i in range(batch):
        positions[i, :count] = np.sort(rng.choice(np.arange(1, length - 1), count, replace=False))
        weights[i, :count] = 1.0
    token_ids = original.copy()
    np.put_along_axis(token_ids, positions[:, :count], 4, 1)
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "masked_positions": positions, "masked_ids": np.take_along_axis(original, positions, 1),
            "masked_weights": weights, "original": original}


def matmul_peak(n: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of the best of ``repeat`` float32 ``n x n`` matmuls."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def time_steps(loops: list[Callable[[], Any]], steps: int, warmup: int = 2) -> list[float]:
    """Median seconds per call of each loop, calling them in turns (so that load changes on
    the machine affect all alike), after ``warmup`` calls each."""
    for _ in range(warmup):
        for step in loops:
            step()
    times: list[list[float]] = [[] for _ in loops]
    for _ in range(steps):
        for step, seconds in zip(loops, times):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def ours(config: dict[str, Any], train: PretrainConfig, batch: dict[str, np.ndarray]) -> tuple[Callable, Any]:
    trainer = Trainer(lambda: build_mlm_model(config), train)
    features = {k: v for k, v in batch.items() if k != "original"}
    iterator = iter(tf.data.Dataset.from_tensors(features).repeat())

    def step() -> float:
        (loss, _, weight, _), _, _ = trainer.step(iterator)
        return loss / weight

    return step, trainer


def wobert_style(config: dict[str, Any], train: PretrainConfig, batch: dict[str, np.ndarray],
                 weights_from: Any) -> Callable:
    """WoBERT's train.py loop: full-position softmax, cross-entropy masked by a weight."""
    model = build_transformer_model(with_mlm=True, **config)
    source = {layer.name: layer for layer in weights_from.layers}
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(source[layer.name].get_weights())
    optimizer = adamw(train.learning_rate, train.weight_decay, train.warmup_steps, train.steps,
                      clipnorm=train.clipnorm)
    optimizer._create_all_weights(model.trainable_variables)
    is_masked = np.zeros_like(batch["token_ids"], np.float32)
    np.put_along_axis(is_masked, batch["masked_positions"], batch["masked_weights"], 1)
    data = {"token_ids": batch["token_ids"], "segment_ids": batch["segment_ids"],
            "original": batch["original"], "is_masked": is_masked}
    iterator = iter(tf.data.Dataset.from_tensors(data).repeat())

    @tf.function
    def train_step(iterator: Any) -> tf.Tensor:
        x = next(iterator)
        with tf.GradientTape() as tape:
            probs = model([x["token_ids"], x["segment_ids"]], training=True)
            xent = keras.losses.sparse_categorical_crossentropy(x["original"], probs)
            loss = tf.reduce_sum(xent * x["is_masked"]) / tf.reduce_sum(x["is_masked"])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda: float(train_step(iterator))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=33585, help="vocabulary size (WoBERT's: 33,585)")
    parser.add_argument("--seq", type=int, default=128, help="sequence length")
    parser.add_argument("--batch", type=int, default=16, help="sequences per step")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loop (the median counts)")
    args = parser.parse_args()

    config = dict(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                  num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                  hidden_act="gelu", max_position_embeddings=max(512, args.seq), type_vocab_size=2,
                  hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    predictions = math.ceil(args.seq * 0.15)
    train = PretrainConfig(model={}, learning_rate=1e-4, warmup_steps=0, steps=1000)
    batch = synthetic_batch(args.batch, args.seq, predictions, args.vocab)
    keras.utils.set_random_seed(0)

    peak = matmul_peak()  # and again after the steps: the better of the two counts
    our_step, trainer = ours(config, train, batch)
    reference_step = wobert_style(config, train, batch, trainer.mlm.transformer.model)
    first = our_step(), reference_step()  # same weights, same batch: same loss up to dropout
    seconds = time_steps([our_step, reference_step], args.steps)
    peak = max(peak, matmul_peak())
    tokens = args.batch * args.seq
    rows = []
    for name, s, head in (("ours: last layer and head at masked positions", seconds[0], predictions),
                          ("WoBERT-style: head at all positions", seconds[1], args.seq)):
        flops = pretraining_flops(config, args.batch, args.seq, head)
        rows.append((name, s, tokens / s, flops, flops / s))

    print(f"\nBERT {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab {args.vocab:,}, "
          f"batch {args.batch} x {args.seq} tokens, {predictions} masked positions; "
          f"float32 on {os.cpu_count()} CPU cores\n"
          f"first-step loss: ours {first[0]:.4f}, WoBERT-style {first[1]:.4f}; "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s\n")
    print("| loop | s/step | tokens/s | model GFLOP/step | GFLOP/s | share of matmul peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds, speed, flops, rate in rows:
        print(f"| {name} | {seconds:.3f} | {speed:,.0f} | {flops / 1e9:.1f} | {rate / 1e9:.1f} | "
              f"{rate / peak:.0%} |")
    ratio, share = rows[0][2] / rows[1][2], rows[0][4] / peak
    met = ratio >= TARGET and share >= PEAK_SHARE
    print(f"\nspeed-up in tokens/s: {ratio:.2f}x (target >= {TARGET}x); ours at {share:.0%} of the "
          f"matmul peak (target >= {PEAK_SHARE:.0%}): {'PASS' if met else 'FAIL'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
