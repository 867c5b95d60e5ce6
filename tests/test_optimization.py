"""The optimizer step: AdamW against bert4keras's, lazy rows, skipped steps, accumulation, loss scale."""
from __future__ import annotations

import numpy as np
import pytest
from test_backend import batch, mlm_model

from wobert.backend import adamw, keras, tf
from wobert.finetune_config import SPARSE_MODES
from wobert.optimization import (
    AdamW,
    GradientAccumulator,
    LossScale,
    clip_scale,
    combine_rows,
    global_norm,
)

SHAPES = {"Embedding-Token/embeddings": (30, 4), "Dense/kernel": (4, 4),
          "Transformer-0-FeedForward-Norm/gamma": (4,), "Dense/bias": (4,)}


def variables(seed: int = 0) -> list[tf.Variable]:
    rng = np.random.RandomState(seed)
    return [tf.Variable(rng.randn(*shape).astype(np.float32), name=name) for name, shape in SHAPES.items()]


def gradients(rng: np.random.RandomState, scale: float) -> list[tf.Tensor]:
    return [tf.constant(rng.randn(*shape).astype(np.float32) * scale) for shape in SHAPES.values()]


@pytest.mark.parametrize("jit_compile", [True, False])
def test_adamw_equals_bert4keras_adamw_with_schedule_decay_and_clipping(jit_compile):
    reference, ours = variables(), variables()
    b4k = adamw(1e-2, weight_decay=0.05, warmup_steps=3, total_steps=10, clipnorm=1.0)
    optimizer = AdamW(ours, 1e-2, weight_decay=0.05, warmup_steps=3, total_steps=10,
                      jit_compile=jit_compile)

    @tf.function
    def step(grads):
        optimizer.apply(grads, clip_scale(global_norm(grads), 1.0))

    rng = np.random.RandomState(1)
    for i in range(12):  # past total_steps: the rate stays 0
        grads = gradients(rng, 5.0 if i % 2 else 0.05)  # clipped, then not
        b4k.apply_gradients(zip(grads, reference))
        step(grads)
        for a, b in zip(reference, ours):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-6, err_msg=f"step {i}: {a.name}")
        assert optimizer.learning_rate(i) == pytest.approx(1e-2 * (i / 3 if i < 3 else max(0, (10 - i) / 7)))
    assert int(optimizer.iterations) == 12


def test_weight_decay_skips_layernorm_and_bias():
    kernel, gamma, bias = (tf.Variable(tf.ones(s), name=n) for n, s in (
        ("Dense/kernel", (2, 2)), ("Transformer-0-FeedForward-Norm/gamma", (2,)), ("Dense/bias", (2,))))
    optimizer = AdamW([kernel, gamma, bias], 1e-2, weight_decay=0.5)
    optimizer.apply([tf.zeros_like(v) for v in (kernel, gamma, bias)])
    assert np.all(kernel.numpy() < 1.0)
    np.testing.assert_array_equal(gamma.numpy(), 1.0)
    np.testing.assert_array_equal(bias.numpy(), 1.0)


def test_dense_update_compiles_without_copying_the_moments():
    var = tf.Variable(tf.ones([8, 16]), name="Dense/kernel")
    optimizer = AdamW([var], 1e-2)
    args = (var, optimizer.m[0], optimizer.v[0], tf.ones([8, 16]), tf.constant(1.0), tf.constant(1e-2),
            0.01, tf.constant(0.1), tf.constant(0.1), tf.constant(True))
    hlo = optimizer._dense.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    assert " copy(" not in hlo  # the old moments copied before the in-place update: 2 more passes
    assert hlo.count(" fusion(") == 3  # m, v, then the weights from the new m and v


def sparse_steps(sparse: str, batches: list[np.ndarray], settle: bool = False,
                 **kwargs) -> tuple[np.ndarray, list[np.ndarray]]:
    """An embedding trained on weighted squares of the lookups of ``batches`` of ids (each
    batch's rows caught up first, as wobert.finetune does): the table before and after each step
    (after ``settle`` at the end, if asked)."""
    table = variables()[0]
    before = table.numpy()
    optimizer = AdamW([table], 1e-2, weight_decay=0.01, sparse=sparse, **kwargs)

    @tf.function
    def step(ids: tf.Tensor) -> None:
        optimizer.catch_up([(table, ids)])
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, ids) ** 2 * tf.range(1.0, 5.0))
        grads = optimizer.prepare(tape.gradient(loss, [table]))
        assert isinstance(grads[0], tf.IndexedSlices) == (sparse != "dense")
        optimizer.apply(grads, clip_scale(global_norm(grads), 1.0))

    after = []
    for ids in batches:
        step(tf.constant(ids))
        after.append(table.numpy())
    if settle:
        optimizer.settle()
        after[-1] = table.numpy()
    return before, after


@pytest.mark.parametrize("sparse", ["lazy", "catch-up"])
def test_sparse_rows_step_as_dense_adamw_where_used_and_stay_bit_identical_elsewhere(sparse):
    batches = [np.array([3, 5, 3, 9]), np.array([9, 5, 5, 3, 3])]  # duplicates: summed
    before, (_, lazy) = sparse_steps(sparse, batches)
    _, (_, dense) = sparse_steps("dense", batches)
    used = [3, 5, 9]
    np.testing.assert_allclose(lazy[used], dense[used], rtol=0, atol=1e-7)
    assert not np.allclose(lazy[used], before[used])
    unused = [i for i in range(len(before)) if i not in used]
    np.testing.assert_array_equal(lazy[unused], before[unused])
    assert not np.array_equal(dense[unused], before[unused])  # dense AdamW decays them


def test_catch_up_rows_hold_dense_adamws_values_whenever_a_batch_reads_them_and_all_after_settle():
    rng = np.random.RandomState(0)
    batches = [rng.choice(30, size=3) for _ in range(40)]  # most rows miss many steps
    schedule = dict(warmup_steps=3, total_steps=50)
    _, dense = sparse_steps("dense", batches, **schedule)
    _, caught_up = sparse_steps("catch-up", batches, settle=True, **schedule)
    _, lazy = sparse_steps("lazy", batches, **schedule)
    for ids, c, d in zip(batches, caught_up, dense):  # their steps read dense AdamW's values
        np.testing.assert_allclose(c[ids], d[ids], rtol=0, atol=5e-6)
    assert np.abs(lazy[-1] - dense[-1]).max() > 1e-2  # lazy Adam moves rarely used rows less
    np.testing.assert_allclose(caught_up[-1], dense[-1], rtol=0, atol=5e-6)


def fixed_gradient_steps(sparse: str, steps: list[tuple[np.ndarray, np.ndarray]], read_first: bool) -> np.ndarray:
    """The table after sparse gradients ``(ids, values)`` that do not depend on the weights, each
    step's rows caught up first if ``read_first``, then settled."""
    table = variables()[0]
    optimizer = AdamW([table], 1e-2, weight_decay=0.01, sparse=sparse, warmup_steps=3, total_steps=40)

    @tf.function
    def step(ids: tf.Tensor, values: tf.Tensor) -> None:
        if read_first:
            optimizer.catch_up([(table, ids)])
        optimizer.apply(optimizer.prepare([tf.IndexedSlices(values, ids, tf.constant([30, 4]))]))

    for ids, values in steps:
        step(tf.constant(ids), tf.constant(values))
    optimizer.settle()
    return table.numpy()


@pytest.mark.parametrize("read_first", [True, False])
def test_catch_up_steps_equal_dense_adamws_whether_or_not_the_rows_were_caught_up_before(read_first):
    """catch-up's ``apply`` catches the rows up itself unless ``catch_up`` did it in the same step."""
    rng = np.random.RandomState(1)
    steps = [(rng.choice(30, size=3, replace=False), rng.randn(3, 4).astype(np.float32)) for _ in range(30)]
    np.testing.assert_allclose(fixed_gradient_steps("catch-up", steps, read_first),
                               fixed_gradient_steps("dense", steps, read_first), rtol=0, atol=5e-6)


def test_combine_rows_sums_duplicates_and_gives_the_dense_norm():
    grad = tf.IndexedSlices(tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), tf.constant([2, 0, 2]),
                            tf.constant([4, 2]))
    combined = combine_rows(grad)
    np.testing.assert_array_equal(tf.convert_to_tensor(combined).numpy(),
                                  tf.convert_to_tensor(grad).numpy())
    assert sorted(combined.indices.numpy()) == [0, 2]
    dense_norm = np.linalg.norm(tf.convert_to_tensor(grad).numpy())
    assert float(global_norm([combined, tf.constant([0.5])])) == pytest.approx(
        np.sqrt(dense_norm**2 + 0.25))


@pytest.mark.parametrize("sparse", SPARSE_MODES)
def test_a_step_that_is_not_finite_moves_nothing(sparse):
    table, kernel = variables()[:2]
    optimizer = AdamW([table, kernel], 1e-2, sparse=sparse)
    rows = tf.IndexedSlices(tf.ones((2, 4)), tf.constant([1, 2]), tf.constant([30, 4]))
    optimizer.apply(optimizer.prepare([rows, tf.ones((4, 4))]))
    state = [x.numpy() for x in [table, kernel] + optimizer.m + optimizer.v]
    bad = tf.IndexedSlices(tf.fill((2, 4), np.nan), tf.constant([1, 2]), tf.constant([30, 4]))
    grads = optimizer.prepare([bad, tf.fill((4, 4), np.inf)])
    norm = global_norm(grads)
    optimizer.apply(grads, clip_scale(norm, 1.0), tf.math.is_finite(norm))
    for old, new in zip(state, [table, kernel] + optimizer.m + optimizer.v):
        np.testing.assert_array_equal(new.numpy(), old)
    assert (int(optimizer.iterations), int(optimizer.skipped)) == (2, 1)


def test_loss_scale_halves_on_overflow_and_grows_after_good_steps():
    scale = LossScale(initial=8.0, growth_steps=3)
    for finite, expected in [(False, 4.0), (True, 4.0), (True, 4.0), (True, 8.0), (False, 4.0)]:
        scale.update(tf.constant(finite))
        assert float(scale.scale) == expected
    for _ in range(5):
        scale.update(tf.constant(False))
    assert float(scale.scale) == 1.0  # never below 1


# ---------------------------------------------------------------------------------------
# Accumulation on a tiny BERT
# ---------------------------------------------------------------------------------------

def train(model: keras.Model, micro_batches: list, steps: int, accumulate: int) -> list[float]:
    """``steps`` optimizer steps over ``accumulate`` micro-batches each (as wobert.pretrain
    does: summed losses, the sums and their weight handed over at the last micro-batch)."""
    variables = model.trainable_variables
    optimizer = AdamW(variables, 1e-2, weight_decay=0.01, warmup_steps=2, total_steps=50, sparse="dense")
    accumulator = GradientAccumulator(variables)
    losses = []
    for _ in range(steps):
        total, count = 0.0, 0
        for i, (tokens, segments) in enumerate(micro_batches[:accumulate]):
            with tf.GradientTape() as tape:
                probs = model([tokens, segments], training=True)
                loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(tokens, probs))
            grads = optimizer.prepare(tape.gradient(loss, variables))
            total, count = total + float(loss), count + tokens.size
            if i < accumulate - 1:
                accumulator.add(grads, tokens.size)
        grads, weight = accumulator.take(grads, tokens.size)
        norm = global_norm(grads)
        optimizer.apply(grads, clip_scale(norm, 1.0, weight))
        losses.append(total / count)
    return losses


def test_adamw_warmup_and_accumulation_lower_the_loss():
    model = mlm_model()
    losses = train(model, [batch(4, 0), batch(4, 1)], steps=8, accumulate=2)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)  # step 0 has lr 0 (warm-up)
    assert losses[-1] < losses[0] - 0.3


def test_accumulating_k_batches_equals_one_big_batch():
    k, b = 3, 2
    tokens, segments = batch(k * b)
    small = [(tokens[i * b:(i + 1) * b], segments[i * b:(i + 1) * b]) for i in range(k)]
    accumulated = mlm_model(seed=1)
    one_batch = mlm_model(seed=1)
    train(accumulated, small, steps=3, accumulate=k)
    train(one_batch, [(tokens, segments)], steps=3, accumulate=1)
    for a, b_ in zip(accumulated.weights, one_batch.weights):
        np.testing.assert_allclose(a.numpy(), b_.numpy(), atol=2e-5)
    changed = mlm_model(seed=1)
    assert any(not np.allclose(a.numpy(), c.numpy()) for a, c in zip(accumulated.weights, changed.weights))
