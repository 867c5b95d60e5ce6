"""The analytic FLOP counts that bound the speed benchmarks' ratios."""
from __future__ import annotations

import pytest

from wobert.flops import encoder_flops, pretraining_flops

CONFIG = dict(hidden_size=8, intermediate_size=32, num_hidden_layers=3, vocab_size=100)


def matmuls(length: int, queries: int) -> float:
    """One layer's forward FLOPs, matmul by matmul (``2 m k n`` each)."""
    h, i = CONFIG["hidden_size"], CONFIG["intermediate_size"]
    shapes = [(queries, h, h), (length, h, h), (length, h, h), (queries, h, h),  # q, k, v, out
              (queries, h, length), (queries, length, h),  # scores, weighted sum
              (queries, h, i), (queries, i, h)]  # feed-forward
    return sum(2.0 * m * k * n for m, k, n in shapes)


@pytest.mark.parametrize("last", [None, 12, 3])
def test_encoder_flops_count_each_matmul_the_last_layer_at_its_queries(last):
    want = 2 * (2 * matmuls(12, 12) + matmuls(12, 12 if last is None else last))
    assert encoder_flops(CONFIG, 2, 12, last) == want


def test_pretraining_flops_count_the_last_layer_and_the_head_at_the_masked_positions():
    head = 2.0 * 2 * 3 * (8 * 8 + 8 * 100)  # 2 sequences x 3 positions: dense, tied output
    assert pretraining_flops(CONFIG, 2, 12, 3) == 3 * (2 * (2 * matmuls(12, 12) + matmuls(12, 3)) + head)
