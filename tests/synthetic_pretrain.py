"""Synthetic pretraining data (the records' batch format) and a runner for subprocess tests.

``python tests/synthetic_pretrain.py OUT SPEC.json`` trains ``wobert.pretrain.train`` on
``SyntheticMLM`` with SPEC.json ``{"config": {...}, "vocab": DIR, "resume": bool,
"cpu_replicas": N, "data": {...}}``; with TF_CONFIG set it is one worker of a multi-worker
run. It prints the result as JSON (with the ``skip_batches`` each dataset started with), or
a user's error as one line (exit status 2), as ``wobert pretrain`` does.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from wobert.manifest import Manifest

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MASK_ID = 4


def write_vocab(directory: Path, size: int) -> Path:
    """A vocabulary directory whose vocab.txt has the specials and ``size - 5`` tokens."""
    directory.mkdir(parents=True, exist_ok=True)
    tokens = SPECIAL + [f"t{i}" for i in range(size - len(SPECIAL))]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return directory


class SyntheticMLM:
    """``n`` masked sequences of up to ``length`` tokens; ids repeat a per-sequence pattern
    so the MLM loss can fall. Sharded per input pipeline by batches, so the workers' batches
    of a step are those one worker's replicas take in turn (and hold the sequences of one
    replica's batch of their total size)."""

    def __init__(self, vocab_size: int, sha256: str | None = None, n: int = 64, length: int = 16,
                 predictions: int = 4, seed: int = 0, nan_batches: tuple[int, ...] = ()) -> None:
        self.nan_batches = tuple(nan_batches)  # batches (of each pipeline) whose weights are NaN
        self.skipped: list[int] = []  # the skip_batches of each dataset made
        rng = np.random.RandomState(seed)
        base = rng.randint(len(SPECIAL), vocab_size, (n, 4))
        original = np.tile(base, (1, length // 4))
        original[:, 0], original[:, -1] = 2, 3
        lengths = rng.randint(length // 2, length + 1, n)
        positions = np.zeros((n, predictions), np.int32)
        weights = np.zeros((n, predictions), np.float32)
        for i, size in enumerate(lengths):
            original[i, size:] = 0
            original[i, size - 1] = 3
            count = rng.randint(1, predictions + 1)
            positions[i, :count] = np.sort(rng.choice(np.arange(1, size - 1), count, replace=False))
            weights[i, :count] = 1.0
        masked_ids = np.take_along_axis(original, positions, 1) * (weights > 0)
        token_ids = original.copy()
        np.put_along_axis(token_ids, positions, MASK_ID, 1)
        token_ids[:, 0] = 2
        self.arrays = {
            "token_ids": token_ids.astype(np.int32),
            "segment_ids": np.zeros_like(token_ids, np.int32),
            "masked_positions": positions,
            "masked_ids": masked_ids.astype(np.int32),
            "masked_weights": weights,
        }
        self.manifest = Manifest(vocab_size=vocab_size, vocab_sha256=sha256, maxlen=length,
                                 max_predictions=predictions)

    def dataset(self, batch_size: int, *, seed: int, shuffle: bool, skip_batches: int = 0,
                input_context: Any = None) -> Any:
        from wobert.backend import tf

        ds = tf.data.Dataset.from_tensor_slices(self.arrays).repeat()
        if shuffle:
            ds = ds.shuffle(16, seed=seed)
        self.skipped.append(skip_batches)
        ds = ds.batch(batch_size)  # full batches of a size unknown while tracing, as the records'
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if self.nan_batches:
            bad = tf.constant(self.nan_batches, tf.int64)

            def poison(index: Any, batch: dict) -> dict:
                nan = tf.reduce_any(tf.equal(bad, index))
                weights = tf.where(nan, float("nan"), batch["masked_weights"])
                return {**batch, "masked_weights": weights}

            ds = ds.enumerate().map(poison)
        return ds.skip(skip_batches)

    def verify(self) -> None:
        """Nothing to verify: the data live in memory."""


def mirrored_on_cpus(replicas: int) -> Any:
    """MirroredStrategy over ``replicas`` logical CPUs (stands in for several GPUs)."""
    from wobert.backend import tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])


def run(out: Path, spec: dict[str, Any]) -> dict[str, Any]:
    from wobert.model import read_vocabulary
    from wobert.pretrain import PretrainConfig, train

    strategy = mirrored_on_cpus(spec["cpu_replicas"]) if spec.get("cpu_replicas") else None
    config = PretrainConfig(**spec["config"])
    vocab = read_vocabulary(spec["vocab"])
    data = SyntheticMLM(vocab.size, vocab.sha256, **spec.get("data", {}))
    result = train(config, data, out, vocab, resume=spec.get("resume", False), strategy=strategy)
    return {**result, "skipped_batches": data.skipped}


if __name__ == "__main__":
    from wobert.cli import run_guarded

    sys.exit(run_guarded("pretrain", lambda: print(json.dumps(
        run(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()))))))
