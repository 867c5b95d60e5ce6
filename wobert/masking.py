"""Masked-language-model masking: token-level (WoBERT) or whole-word, in NumPy and in TF.

Both implementations follow one algorithm, so static masking (NumPy, at build time) and
dynamic masking (TF ops inside ``tf.data``, at train time) mask alike:

1. Tokens are grouped into words (``word_starts[i] == 1`` where a word begins); token-level
   masking makes every token its own group. ``[CLS]`` and ``[SEP]`` are never masked.
2. The number of tokens to mask is ``k = n * mask_rate`` rounded up or down at random
   (so the expected count is exactly ``n * mask_rate``), at most ``max_predictions``.
3. Groups are taken in random order while their total stays within ``k``; the group that
   would cross ``k`` is taken with probability ``(k - taken) / size`` (again exact in
   expectation) unless it would pass ``max_predictions``. A word is never split.
4. Each chosen token becomes ``[MASK]`` (80%), a random non-special token (10%) or stays (10%).

Only the chosen positions (ascending) and their original ids are returned, padded to
``max_predictions``, so the model computes the MLM head there alone. Both work on padded
batches ``[B, W]`` with the sequence lengths; groups live in W slots per row (at most W - 2
are real words; empty slots have size 0 and change nothing).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

MASKINGS = ("token", "wwm")
MASK_PROB, RANDOM_PROB = 0.8, 0.1


def default_max_predictions(maxlen: int, mask_rate: float, masking: str) -> int:
    """``ceil(maxlen * mask_rate)`` (20 for 128, 77 for 512: never binding for token masking),
    plus 3 for whole-word masking, whose last word may pass the target by a few tokens."""
    return math.ceil(maxlen * mask_rate) + (3 if masking == "wwm" else 0)


class MaskSpec(NamedTuple):
    """What masking needs to know about the vocabulary and the options."""

    mask_id: int
    random_ranges: tuple[tuple[int, int], ...]  # [start, stop) id ranges of non-special tokens
    mask_rate: float = 0.15
    max_predictions: int = 20
    whole_word: bool = False


def random_ranges(token_ids: Iterable[int], special_ids: set[int]) -> tuple[tuple[int, int], ...]:
    """The ids not in ``special_ids`` as sorted ``[start, stop)`` ranges (compact for JSON)."""
    ranges: list[list[int]] = []
    for i in sorted(set(token_ids) - special_ids):
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return tuple((a, b) for a, b in ranges)


def _range_tables(ranges: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative ends of ``ranges`` and the offset that maps a draw below each end to an id."""
    sizes = np.array([b - a for a, b in ranges], np.int64)
    ends = np.cumsum(sizes)
    return ends, np.array([a for a, _ in ranges], np.int64) - (ends - sizes)


def random_tokens(u: np.ndarray, ranges: Sequence[Sequence[int]]) -> np.ndarray:
    """Map uniforms in [0, 1) to ids drawn uniformly from ``ranges``."""
    ends, offsets = _range_tables(ranges)
    k = np.minimum((u * ends[-1]).astype(np.int64), ends[-1] - 1)
    return (k + offsets[np.searchsorted(ends, k, side="right")]).astype(np.int32)


class Masked(NamedTuple):
    """A masked batch: inputs [B, W], and [B, max_predictions] targets (ascending positions)."""

    token_ids: np.ndarray
    masked_positions: np.ndarray
    masked_ids: np.ndarray
    masked_weights: np.ndarray


def mask_batch(token_ids: np.ndarray, word_starts: np.ndarray | None, lengths: np.ndarray,
               spec: MaskSpec, rng: np.random.Generator) -> Masked:
    """Mask a padded batch of ``[CLS] ... [SEP]`` sequences (see the module docstring)."""
    token_ids = np.asarray(token_ids, np.int32)
    batch, width = token_ids.shape
    P = spec.max_predictions
    pos = np.arange(width)[None, :]
    lengths = np.asarray(lengths, np.int64)[:, None]
    inner = (pos >= 1) & (pos < lengths - 1)
    if spec.whole_word:
        starts = np.where(pos == 1, 1, np.asarray(word_starts, np.int64)) * inner
        group = np.cumsum(starts, axis=1) - 1
    else:
        group = np.broadcast_to(pos - 1, (batch, width))
    group = np.where(inner, group, width - 1)
    rows = np.arange(batch)[:, None] * width
    sizes = np.bincount((rows + group).ravel(), inner.ravel(), batch * width).reshape(batch, width)
    order = np.argsort(rng.random((batch, width)), axis=1, kind="stable")
    ordered = np.take_along_axis(sizes, order, 1)
    after = np.cumsum(ordered, axis=1)
    before = after - ordered
    target = np.minimum(np.floor((lengths - 2) * spec.mask_rate + rng.random((batch, 1))), P)
    crossing = (before < target) & (after > target) & (after <= P)
    take = (after <= target) | (crossing & (rng.random((batch, width)) * ordered < target - before))
    chosen = np.zeros((batch, width), bool)
    np.put_along_axis(chosen, order, take, 1)
    masked = np.take_along_axis(chosen, group, 1) & inner
    # chosen positions first, ascending (a stable sort of "not chosen"), then padding
    padded = np.pad(masked, [(0, 0), (0, max(P - width, 0))])
    positions = np.argsort(~padded, axis=1, kind="stable")[:, :P]
    weights = np.take_along_axis(padded, positions, 1)
    positions = np.where(weights, positions, 0).astype(np.int32)
    originals = np.take_along_axis(token_ids, positions, 1)
    u = rng.random((batch, P))
    replace = np.where(u < MASK_PROB, spec.mask_id, originals)
    random = (u >= MASK_PROB) & (u < MASK_PROB + RANDOM_PROB)
    replace = np.where(random, random_tokens(rng.random((batch, P)), spec.random_ranges), replace)
    out = token_ids.copy()
    out[np.nonzero(weights)[0], positions[weights]] = replace[weights]
    return Masked(out, positions, np.where(weights, originals, 0), weights.astype(np.float32))


def mask_batch_tf(token_ids: Any, word_starts: Any, lengths: Any, spec: MaskSpec, seed: Any) -> dict[str, Any]:
    """``mask_batch`` as TF ops for ``tf.data``, stateless (``seed``: int64 [2]); returns the
    ``Masked`` fields as a dict."""
    from wobert.backend import tf

    token_ids = tf.cast(token_ids, tf.int32)
    batch, width = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    P = spec.max_predictions
    seeds = tf.random.experimental.stateless_split(seed, 5)
    pos = tf.range(width)[None, :]
    lengths = tf.cast(lengths, tf.int32)[:, None]
    inner = (pos >= 1) & (pos < lengths - 1)
    if spec.whole_word:
        starts = tf.where(pos == 1, 1, tf.cast(word_starts, tf.int32)) * tf.cast(inner, tf.int32)
        group = tf.cumsum(starts, axis=1) - 1
    else:
        group = pos - 1 + tf.zeros_like(token_ids)
    group = tf.where(inner, group, width - 1)
    rows = tf.range(batch)[:, None] * width
    sizes = tf.reshape(tf.math.unsorted_segment_sum(
        tf.cast(inner, tf.int32), rows + group, batch * width), [batch, width])
    order = tf.argsort(tf.random.stateless_uniform([batch, width], seeds[0]), axis=1, stable=True)
    ordered = tf.gather(sizes, order, batch_dims=1)
    after = tf.cumsum(ordered, axis=1)
    before = after - ordered
    target = tf.minimum(tf.cast(tf.floor(tf.cast(lengths - 2, tf.float32) * spec.mask_rate
                                         + tf.random.stateless_uniform([batch, 1], seeds[1])), tf.int32), P)
    crossing = (before < target) & (after > target) & (after <= P)
    draw = tf.random.stateless_uniform([batch, width], seeds[2]) * tf.cast(ordered, tf.float32)
    take = (after <= target) | (crossing & (draw < tf.cast(target - before, tf.float32)))
    chosen = tf.gather(take, tf.argsort(order, axis=1), batch_dims=1)
    masked = tf.gather(chosen, group, batch_dims=1) & inner
    # chosen positions first, ascending: top_k of (width - position) over the chosen tokens
    key = tf.pad(tf.where(masked, width - pos, 0), [[0, 0], [0, tf.maximum(P - width, 0)]])
    top, positions = tf.math.top_k(key, k=P)
    weights = top > 0
    positions = tf.where(weights, positions, 0)
    originals = tf.gather(token_ids, positions, batch_dims=1)
    u = tf.random.stateless_uniform([batch, P], seeds[3])
    ends, offsets = _range_tables(spec.random_ranges)
    k = tf.cast(tf.random.stateless_uniform([batch, P], seeds[4]) * float(ends[-1]), tf.int64)
    k = tf.minimum(k, int(ends[-1]) - 1)
    which = tf.reduce_sum(tf.cast(k[..., None] >= ends, tf.int32), -1)  # few ranges: compare all
    randoms = tf.cast(k + tf.gather(offsets, which), tf.int32)
    replace = tf.where(u < MASK_PROB, spec.mask_id, originals)
    replace = tf.where((u >= MASK_PROB) & (u < MASK_PROB + RANDOM_PROB), randoms, replace)
    index = tf.stack([tf.broadcast_to(tf.range(batch)[:, None], [batch, P]), positions], -1)
    return {
        "token_ids": tf.tensor_scatter_nd_update(token_ids, index, tf.where(weights, replace, originals)),
        "masked_positions": positions,
        "masked_ids": tf.where(weights, originals, 0),
        "masked_weights": tf.cast(weights, tf.float32),
    }
