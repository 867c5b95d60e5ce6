"""The optimizer step as plain TF2 code: AdamW, gradient accumulation, clipping, loss scaling.

- ``AdamW`` is bert4keras's AdamW (``extend_with_weight_decay_v2`` on its Adam, epsilon
  1e-6, with ``extend_with_piecewise_linear_lr_v2``'s warm-up and linear decay), written so
  that a dense variable is updated in one pass: its moments and weights are one XLA-compiled
  kernel (``jit_compile``) instead of a dozen element-wise ops. A sparse gradient (the token
  embedding in finetuning) updates only the rows it touches (``sparse``):

  - ``"lazy"``, as TF's LazyAdam or PyTorch's SparseAdam: the moments and weight decay of a
    row advance only when a batch uses it;
  - ``"catch-up"``: as lazy, but a row first catches up on the steps it missed, moving as dense
    AdamW would have moved it with a zero gradient (its momentum keeps pushing it, its moments
    and weight decay advance). ``catch_up`` does it for the rows a batch is about to read, so
    the forward pass sees dense AdamW's values while a step still touches only those rows;
    ``settle`` does it for every row (before an evaluation or a save). The sum over the missed
    steps is closed-form but for epsilon, which is taken at the first missed step's scale, and
    it stops after ``CATCH_UP_WINDOW`` steps, where the momentum is spent. A skipped step
    (below) counts as one without gradient. Tables of at most ``DENSE_ROWS`` rows (the segment
    embedding) take dense steps, which give the same values in fewer ops;
  - ``"dense"``: the gradient made dense, every row moves every step.
- ``GradientAccumulator`` adds the gradients of *summed* losses over micro-batches together
  with their weight (e.g. the number of masked tokens); the optimizer step then applies
  ``sum of gradients / total weight`` over all micro-batches and replicas, so ``k``
  micro-batches of ``b`` examples give the same step as one batch of ``k * b``.
- ``clip_scale`` folds clipping by global norm (and the 1 / weight) into one scalar that the
  update multiplies each gradient by, so clipping costs no pass of its own.
- A step whose gradient norm is not finite changes no weight or moment (``finite``); the step
  counter moves on (the schedule stays with the steps, as with Keras's LossScaleOptimizer) and
  ``skipped`` counts it. ``LossScale`` is dynamic loss scaling for mixed precision on top of it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeAlias

from wobert.backend import NO_DECAY, linear_schedule, piecewise_linear, tf
from wobert.finetune_config import SPARSE_MODES

Gradient: TypeAlias = "tf.Tensor | tf.IndexedSlices | None"
CATCH_UP_WINDOW = 160  # 0.9 ** 160 < 1e-7: later momentum steps are below float32's resolution
DENSE_ROWS = 16  # "catch-up": a table this small (the segment embedding) takes dense steps, in fewer ops


def _variable(value: tf.Tensor, name: str, **kwargs) -> tf.Variable:
    return tf.Variable(value, trainable=False, name=name, **kwargs)


class AdamW(tf.Module):
    """AdamW over ``variables``; see the module docstring. Create it inside the strategy's
    scope; call ``apply`` in replica context (inside ``strategy.run``) or without a strategy.

    Weight decay skips variables whose names contain any of ``exclude_from_weight_decay``
    (LayerNorm and biases by default). ``jit_compile``: the XLA kernel for dense variables
    (off: the same update as plain TF ops). ``sparse``: how sparse gradients update, one of
    ``SPARSE_MODES``.
    """

    def __init__(self, variables: Sequence[tf.Variable], learning_rate: float, *,
                 weight_decay: float = 0.01, warmup_steps: int = 0, total_steps: int | None = None,
                 exclude_from_weight_decay: Sequence[str] = NO_DECAY, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-6, sparse: str = "lazy",
                 jit_compile: bool = True) -> None:
        super().__init__(name="AdamW")
        if sparse not in SPARSE_MODES:
            raise ValueError(f"sparse must be one of {SPARSE_MODES}, not {sparse!r}")
        self.params = list(variables)
        self.base_learning_rate = float(learning_rate)
        self.schedule = linear_schedule(warmup_steps, total_steps)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.sparse = sparse
        self.decay = [0.0 if any(re.search(p, v.name) for p in exclude_from_weight_decay)
                      else float(weight_decay) for v in self.params]
        self.iterations = _variable(tf.constant(0, tf.int64), "iterations",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.skipped = _variable(tf.constant(0, tf.int64), "skipped",
                                 aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.m = [_variable(tf.zeros_like(v), f"m/{i}") for i, v in enumerate(self.params)]
        self.v = [_variable(tf.zeros_like(v), f"v/{i}") for i, v in enumerate(self.params)]
        self._caught_up: set[int] = set()  # variables whose rows catch_up moved in the step being traced
        if sparse == "catch-up":  # per row: the steps applied to it, and their learning rates' sum
            self.lr_sum = _variable(tf.constant(0.0, tf.float64), "lr_sum",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            rows = [v.shape[:1] if v.shape.rank else [0] for v in self.params]
            self.seen = [_variable(tf.zeros(n, tf.int64), f"seen/{i}") for i, n in enumerate(rows)]
            self.seen_lr = [_variable(tf.zeros(n, tf.float64), f"seen_lr/{i}") for i, n in enumerate(rows)]
            self._sparse_params: set[int] = set()  # those a traced step updated row by row
        self._dense = tf.function(self._dense_update, jit_compile=jit_compile or None,
                                  reduce_retracing=True)

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        return self.base_learning_rate * float(piecewise_linear(step, self.schedule))

    def prepare(self, grads: Sequence[Gradient]) -> list[Gradient]:
        """What ``apply`` takes: sparse gradients with each row once, or dense (``"dense"``, and
        in ``"catch-up"`` for tables of at most ``DENSE_ROWS`` rows)."""
        return [(tf.convert_to_tensor(g) if self._dense_rows(i) else combine_rows(g))
                if isinstance(g, tf.IndexedSlices) else g for i, g in enumerate(grads)]

    def _dense_rows(self, i: int) -> bool:
        """Whether a sparse gradient of variable ``i`` is applied as a dense one."""
        return self.sparse == "dense" or (self.sparse == "catch-up" and self.params[i].shape[0] <= DENSE_ROWS)

    def apply(self, grads: Sequence[Gradient], scale: tf.Tensor | float = 1.0,
              finite: tf.Tensor | bool = True) -> None:
        """One step with the gradients ``grads * scale`` (aligned with ``variables``; None:
        no gradient); no weight or moment moves where ``finite`` is False. Sparse gradients must hold
        each row once (``combine_rows``, done by ``prepare``)."""
        ctx = tf.distribute.get_replica_context()
        ctx.merge_call(self._apply_cross_replica, args=(list(grads), scale, finite))

    def _apply_cross_replica(self, strategy: tf.distribute.Strategy, grads: list, scale, finite) -> None:
        step = tf.cast(self.iterations, tf.float32)
        lr = self.base_learning_rate * piecewise_linear(self.iterations, self.schedule)
        c1 = 1.0 - tf.pow(self.beta_1, step + 1)
        c2 = 1.0 - tf.pow(self.beta_2, step + 1)
        for i, (var, m, v, grad, decay) in enumerate(zip(self.params, self.m, self.v, grads, self.decay)):
            if grad is None:
                continue
            if self.sparse != "dense" and isinstance(local_values(grad)[0], tf.IndexedSlices):
                # rows another worker's batch read were not caught up here
                caught_up = i in self._caught_up and strategy.num_replicas_in_sync == len(local_values(var))
                clocks = self._clocks(i)
                for (x, m_x, v_x, g, s, ok), clock in zip(each_replica(var, m, v, grad, scale, finite), clocks):
                    with tf.device(x.device):
                        self._sparse_update(x, m_x, v_x, g, s, lr, decay, c1, c2, ok, clock, caught_up)
            else:
                for x, m_x, v_x, g, s, ok in each_replica(var, m, v, grad, scale, finite):
                    with tf.device(x.device):
                        self._dense(x, m_x, v_x, g, s, lr, decay, c1, c2, ok)
        self._caught_up.clear()
        for it, skipped, ok in each_replica(self.iterations, self.skipped, finite):
            it.assign_add(1)
            skipped.assign_add(1 - tf.cast(tf.cast(ok, tf.bool), tf.int64))
        if self.sparse == "catch-up":
            for lr_sum, in each_replica(self.lr_sum):
                lr_sum.assign_add(tf.cast(lr, tf.float64))

    def _clocks(self, i: int) -> list:
        """Per local replica, what the catch-up of variable ``i`` reads: (seen, seen_lr, now,
        lr_sum), or None each (``lazy``)."""
        if self.sparse != "catch-up":
            return [None] * len(local_values(self.params[i]))
        self._sparse_params.add(i)
        return each_replica(self.seen[i], self.seen_lr[i], self.iterations, self.lr_sum)

    def catch_up(self, reads: Sequence[tuple[tf.Variable, tf.Tensor]]) -> None:
        """Before a forward pass: bring the rows it reads (``(variable, ids)`` pairs, e.g. the
        token embedding and the token ids) up to date (``"catch-up"``; nothing otherwise). Call in
        replica context, as ``apply``, in the same traced step; the ids of this worker's replicas
        are caught up on each. On one worker the step's ``apply`` then does not catch those
        variables up again, so ``ids`` must hold every row their gradients will touch."""
        if self.sparse != "catch-up":
            return
        index = {id(p): i for i, p in enumerate(self.params)}
        pairs = [(index[id(var)], ids) for var, ids in reads if not self._dense_rows(index[id(var)])]
        if pairs:
            tf.distribute.get_replica_context().merge_call(self._catch_up_cross_replica, args=(pairs,))

    def _catch_up_cross_replica(self, strategy: tf.distribute.Strategy, pairs: list) -> None:
        for i, ids in pairs:
            rows = tf.unique(tf.concat([tf.reshape(t, [-1]) for t in local_values(ids)], 0))[0]
            self._settle_variable(i, tf.cast(rows, tf.int64))
            self._caught_up.add(i)

    def settle(self) -> None:
        """Bring every row that sparse steps left behind up to date (``"catch-up"``): the
        weights then equal dense AdamW's. Call before reading all weights (evaluation, saving)."""
        if self.sparse == "catch-up":  # eager: a traced function per optimizer warns of retracing
            for i in sorted(self._sparse_params):
                self._settle_variable(i, None)

    def _settle_variable(self, i: int, rows: tf.Tensor | None) -> None:
        """Rows ``rows`` (None: all) of variable ``i`` caught up, on each local replica."""
        for x, m, v, clock in zip(*(local_values(t) for t in (self.params[i], self.m[i], self.v[i])),
                                  self._clocks(i)):
            with tf.device(x.device):
                self._settle_rows(x, m, v, self.decay[i], clock, rows)

    def _moments(self, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return (self.beta_1 * m + (1.0 - self.beta_1) * g,
                self.beta_2 * v + (1.0 - self.beta_2) * tf.square(g))

    def _step(self, x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, lr, decay, c1, c2) -> tf.Tensor:
        """bert4keras's update: ``x - lr * m^ / (sqrt(v^) + eps) - lr * decay * x``."""
        adam = x - lr * (m / c1) / (tf.sqrt(v / c2) + self.epsilon)
        return adam - lr * decay * x if decay else adam

    def _dense_update(self, var, m, v, grad, scale, lr, decay, c1, c2, finite) -> None:
        """The weights' step reads the moments as written (equal to the new ones wherever it
        counts), so XLA updates both in place instead of first copying the old ones."""
        g = tf.convert_to_tensor(grad) * tf.cast(scale, var.dtype)
        finite = tf.cast(finite, tf.bool)
        m_t, v_t = self._moments(m, v, g)
        m_t, v_t = tf.where(finite, m_t, m), tf.where(finite, v_t, v)
        x = var.read_value()
        m.assign(m_t)
        v.assign(v_t)
        var.assign(tf.where(finite, self._step(x, m_t, v_t, lr, decay, c1, c2), x))

    def _sparse_update(self, var, m, v, grad, scale, lr, decay, c1, c2, finite, clock,
                       caught_up: bool = False) -> None:
        """Lazy Adam on the rows of ``grad``; with a ``clock`` (``"catch-up"``) the rows first
        catch up, unless ``catch_up`` did it earlier in this step (``caught_up``)."""
        count = tf.where(tf.cast(finite, tf.bool), tf.size(grad.indices), 0)  # no rows: nothing moves
        rows = grad.indices[:count]
        g = grad.values[:count] * tf.cast(scale, var.dtype)
        x, m_r, v_r = tf.gather(var, rows), tf.gather(m, rows), tf.gather(v, rows)
        if clock is not None:
            seen, seen_lr, now, lr_sum = clock
            if not caught_up:
                x, m_r, v_r = self._catch_up(x, m_r, v_r, decay, tf.gather(seen, rows), now,
                                             lr_sum - tf.gather(seen_lr, rows))
            self._mark(seen, seen_lr, rows, now + 1, lr_sum + tf.cast(lr, tf.float64))
        m_t, v_t = self._moments(m_r, v_r, g)
        x_t = self._step(x, m_t, v_t, lr, decay, c1, c2)
        m.scatter_update(tf.IndexedSlices(m_t, rows))
        v.scatter_update(tf.IndexedSlices(v_t, rows))
        var.scatter_update(tf.IndexedSlices(x_t, rows))

    def _catch_up(self, x, m, v, decay: float, since: tf.Tensor, now: tf.Tensor,
                  lr_missed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Rows ``x`` (moments ``m``, ``v``), last updated by step ``since - 1``, as dense AdamW
        leaves them after steps ``since .. now - 1`` with a zero gradient (``lr_missed``: the sum of
        those steps' learning rates). Step ``since + j - 1`` moves a row by ``lr * b1^j m^ /
        (sqrt(b2^j v^) + eps)``: a factor per step times ``m / (sqrt(v) + eps')``."""
        starts, where = tf.unique(since)
        j = tf.range(1, CATCH_UP_WINDOW + 1, dtype=tf.float32)
        step = tf.cast(starts, tf.float32)[:, None] + j - 1.0
        lr = self.base_learning_rate * piecewise_linear(step, self.schedule)
        c2 = 1.0 - tf.pow(self.beta_2, step + 1.0)
        factor = lr * tf.pow(self.beta_1, j) / (1.0 - tf.pow(self.beta_1, step + 1.0)) * tf.sqrt(
            c2 / tf.pow(self.beta_2, j))
        missed = tf.cast(now - starts, tf.float32)
        factor = tf.where(j <= missed[:, None], factor, 0.0)
        lr_missed = tf.cast(lr_missed, tf.float32)
        if decay:  # the decay of the later missed steps shrinks each move: prod(1 - lr * decay)
            total = tf.math.unsorted_segment_max(lr_missed, where, tf.size(starts))  # = exp(-decay * sum(lr))
            later = total[:, None] - tf.cumsum(tf.where(j <= missed[:, None], lr, 0.0), axis=1)
            factor *= tf.exp(-decay * later)
        drift = tf.reduce_sum(factor, axis=1)
        eps = self.epsilon * tf.sqrt(c2[:, 0] / self.beta_2)  # eps at the first missed step's scale
        k = tf.gather(missed, where)[:, None]
        x_decayed = x * tf.exp(-decay * lr_missed)[:, None] if decay else x
        x = x_decayed - tf.gather(drift, where)[:, None] * m / (tf.sqrt(v) + tf.gather(eps, where)[:, None])
        return x, m * tf.pow(self.beta_1, k), v * tf.pow(self.beta_2, k)

    def _settle_rows(self, var, m, v, decay: float, clock, rows: tf.Tensor | None) -> None:
        """Rows ``rows`` (None: all) of ``var`` caught up to the current step."""
        seen, seen_lr, now, lr_sum = clock
        if rows is None:
            rows = tf.range(tf.shape(var, out_type=tf.int64)[0])
        x, m_t, v_t = self._catch_up(tf.gather(var, rows), tf.gather(m, rows), tf.gather(v, rows), decay,
                                     tf.gather(seen, rows), now, lr_sum - tf.gather(seen_lr, rows))
        for target, value in ((var, x), (m, m_t), (v, v_t)):
            target.scatter_update(tf.IndexedSlices(value, rows))
        self._mark(seen, seen_lr, rows, now.read_value(), lr_sum.read_value())

    @staticmethod
    def _mark(seen, seen_lr, rows: tf.Tensor, step: tf.Tensor, lr_total: tf.Tensor) -> None:
        """Rows ``rows`` now hold the values after ``step`` steps whose learning rates sum to
        ``lr_total``."""
        seen.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), step), rows))
        seen_lr.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), lr_total), rows))


def local_values(value) -> tuple:
    """The per-replica parts of a distributed value (or variable) on this worker; ``(value,)``
    for anything else."""
    return tf.distribute.get_strategy().experimental_local_results(value)


def each_replica(*values) -> list[tuple]:
    """``values`` part by part, one tuple per local replica (in cross-replica context): the
    variables' own components, so updates run on plain variables on each device."""
    parts = [local_values(x) for x in values]
    count = max(map(len, parts))
    return list(zip(*(p * count if len(p) == 1 else p for p in parts)))


def combine_rows(grad: Gradient) -> Gradient:
    """A sparse gradient with each row once (duplicate rows summed); others unchanged."""
    if not isinstance(grad, tf.IndexedSlices):
        return grad
    rows, where = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, where, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, grad.dense_shape)


def global_norm(grads: Sequence[Gradient]) -> tf.Tensor:
    """The global norm of ``grads`` (sparse ones must hold each row once); ``l2_loss`` sums
    the squares in one pass, without writing them out first."""
    halves = [tf.nn.l2_loss(g.values if isinstance(g, tf.IndexedSlices) else g)
              for g in grads if g is not None]
    return tf.sqrt(2.0 * tf.add_n(halves)) if halves else tf.constant(0.0)


def clip_scale(norm: tf.Tensor, clipnorm: float | None, weight: tf.Tensor | float = 1.0) -> tf.Tensor:
    """The factor that turns gradient sums of total ``weight`` into the mean gradient, clipped
    to global norm ``clipnorm`` (``norm``: the global norm of the sums)."""
    weight = tf.maximum(tf.cast(weight, tf.float32), 1e-9)
    if not clipnorm:
        return 1.0 / weight
    mean_norm = norm / weight
    return tf.minimum(1.0, clipnorm / tf.maximum(mean_norm, 1e-12)) / weight


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
    """Sums gradients and loss weights over micro-batches (per replica); ``take`` hands them
    over, with the last micro-batch's, and resets. Create it inside the strategy's scope."""

    def __init__(self, variables: Sequence[tf.Variable]) -> None:
        self.sums = [_local_variable(v.shape, v.dtype, f"accum/{i}") for i, v in enumerate(variables)]
        self.weight = _local_variable((), tf.float32, "accum/weight")

    def add(self, grads: Sequence[Gradient], weight: tf.Tensor) -> None:
        """Add the gradients of a summed loss and its weight (e.g. masked-token count)."""
        for total, grad in zip(self.sums, grads):
            if grad is not None:
                total.assign_add(tf.convert_to_tensor(grad))
        self.weight.assign_add(tf.cast(weight, tf.float32))

    def take(self, grads: Sequence[Gradient], weight: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
        """The sums with ``grads`` and ``weight`` added; the accumulator is reset."""
        out = [tf.identity(s) if g is None else s + tf.convert_to_tensor(g)
               for s, g in zip(self.sums, grads)]
        total = self.weight + tf.cast(weight, tf.float32)
        with tf.control_dependencies(out + [total]):
            self.reset()
        return out, total

    def reset(self) -> None:
        """Zero the sums (also after restoring a checkpoint taken at a step boundary)."""
        for total in self.sums:
            total.assign(tf.zeros_like(total))
        self.weight.assign(0.0)


def all_reduce(grads: list[Gradient], weight: tf.Tensor) -> tuple[list[Gradient], tf.Tensor]:
    """Sum gradients and ``weight`` (any tensor, e.g. the weight and the loss) over the
    replicas (nothing to do with one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return grads, weight
    present = [i for i, g in enumerate(grads) if g is not None]
    summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present] + [weight])
    out = list(grads)
    for i, g in zip(present, summed):
        out[i] = g
    return out, summed[-1]


class LossScale(tf.Module):
    """Dynamic loss scaling (as Keras's LossScaleOptimizer): start at 2**15, halve after a
    step with a non-finite gradient (which is skipped), double after ``growth_steps``
    finite steps in a row."""

    def __init__(self, initial: float = 2.0**15, growth_steps: int = 2000) -> None:
        super().__init__(name="LossScale")
        sync = dict(aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.scale = _variable(tf.constant(initial, tf.float32), "scale", **sync)
        self.good_steps = _variable(tf.constant(0, tf.int64), "good_steps", **sync)
        self.growth_steps = growth_steps

    def update(self, finite: tf.Tensor) -> None:
        """Adjust the scale after a step (in replica context, or without a strategy)."""
        tf.distribute.get_replica_context().merge_call(self._update, args=(finite,))

    def _update(self, strategy: tf.distribute.Strategy, finite) -> None:
        for scale, good, ok in each_replica(self.scale, self.good_steps, finite):
            ok = tf.cast(ok, tf.bool)
            grow = ok & (good + 1 >= self.growth_steps)
            scale.assign(tf.where(grow, scale * 2.0, tf.where(ok, scale, tf.maximum(scale / 2.0, 1.0))))
            good.assign(tf.where(ok & ~grow, good + 1, tf.zeros_like(good)))
