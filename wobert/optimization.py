"""Gradient accumulation and clipping as plain TF2 code, exact under ``tf.distribute``.

bert4keras's own accumulation applies the accumulated step one cycle late and only through
``K.update``; here gradients of *summed* losses are added up over micro-batches together with
their weight (e.g. the number of masked tokens), and one optimizer step applies
``sum of gradients / total weight`` over all micro-batches and replicas. So ``k`` micro-batches
of ``b`` examples give the same step as one batch of ``k * b``.
"""
from __future__ import annotations

from typing import Sequence

from wobert.backend import tf


def _local_variable(shape: tf.TensorShape, dtype: tf.DType, name: str) -> tf.Variable:
    """A per-replica, non-trainable variable (each replica sums its own share)."""
    return tf.Variable(
        tf.zeros(shape, dtype),
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.SUM,
    )


class GradientAccumulator:
    """Sums gradients and loss weights over micro-batches; ``apply`` takes one optimizer step.

    Create it inside the strategy's scope; call ``add`` and ``apply`` in replica context
    (inside ``strategy.run``) or without any strategy.
    """

    def __init__(self, variables: Sequence[tf.Variable], clipnorm: float | None = 1.0) -> None:
        self.variables = list(variables)
        self.clipnorm = clipnorm
        self.sums = [
            _local_variable(v.shape, v.dtype, f"accum/{i}") for i, v in enumerate(self.variables)
        ]
        self.weight = _local_variable((), tf.float32, "accum/weight")

    def add(self, grads: Sequence[tf.Tensor | tf.IndexedSlices | None], weight: tf.Tensor) -> None:
        """Add the gradients of a summed loss and its weight (e.g. masked-token count)."""
        for total, grad in zip(self.sums, grads):
            if grad is not None:
                total.assign_add(tf.convert_to_tensor(grad))
        self.weight.assign_add(tf.cast(weight, tf.float32))

    def apply(self, optimizer: tf.keras.optimizers.Optimizer) -> tf.Tensor:
        """All-reduce, average, clip and apply the accumulated gradients; reset. Returns the norm."""
        ctx = tf.distribute.get_replica_context()
        sums = [tf.identity(s) for s in self.sums]
        weight = tf.identity(self.weight)
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            sums = ctx.all_reduce(tf.distribute.ReduceOp.SUM, sums)
            weight = ctx.all_reduce(tf.distribute.ReduceOp.SUM, weight)
        grads = [s / tf.maximum(weight, 1e-9) for s in sums]
        norm = tf.linalg.global_norm(grads)
        if self.clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, self.clipnorm, use_norm=norm)
        optimizer.apply_gradients(
            zip(grads, self.variables), experimental_aggregate_gradients=False
        )
        self.reset()
        return norm

    def reset(self) -> None:
        """Zero the sums (also after restoring a checkpoint taken at a step boundary)."""
        for total in self.sums:
            total.assign(tf.zeros_like(total))
        self.weight.assign(0.0)
