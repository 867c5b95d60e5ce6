"""FLOPs of BERT steps, counted analytically from the matmuls: what speed ratios are bounded by.

A forward pass over a batch padded to ``[B, L]`` costs, per layer, ``2 L (4 h^2 + 2 h i)`` for
the projections and the feed-forward network plus ``4 L^2 h`` for attention (scores and
weighted sum), per sequence; where the last layer's output is needed at ``P`` positions only
(MLM pretraining), its queries, output projection and feed-forward network cost ``P / L`` of
that. The MLM head costs ``2 (h^2 + h V)`` per predicted position, a classifier
``2 (h^2 + h C)`` per sequence (pooler and softmax). Training costs 3 forward passes (forward,
and the backward pass's two matmuls per matmul). Element-wise work, the
embedding lookups and the optimizer are left out: they are what a measured ratio may lose
against the bound.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def encoder_flops(config: Mapping[str, Any], batch: int, length: int,
                  last_queries: int | None = None) -> float:
    """Forward FLOPs of the encoder on ``batch`` sequences padded to ``length`` tokens, the last
    layer's output at ``last_queries`` positions per sequence (all by default)."""
    h, i, layers = (config[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers"))

    def layer(queries: int) -> float:
        keys_values = 2 * length * 2 * h * h
        return keys_values + 2 * queries * (2 * h * h + 2 * h * i) + 4 * queries * length * h

    last = length if last_queries is None else last_queries
    return float(batch * ((layers - 1) * layer(length) + layer(last)))


def mlm_head_flops(config: Mapping[str, Any], positions: int) -> float:
    """Forward FLOPs of the MLM head (dense, tied output over the vocabulary) at ``positions``."""
    h, v = config["hidden_size"], config["vocab_size"]
    return 2.0 * positions * (h * h + h * v)


def classifier_flops(config: Mapping[str, Any], batch: int, labels: int) -> float:
    """Forward FLOPs of the pooler and the softmax layer for ``batch`` sequences."""
    h = config["hidden_size"]
    return 2.0 * batch * (h * h + h * labels)


def pretraining_flops(config: Mapping[str, Any], batch: int, length: int, positions: int) -> float:
    """Training FLOPs of an MLM step: the last layer's queries onwards and the head at
    ``positions`` positions per sequence."""
    return 3.0 * (encoder_flops(config, batch, length, positions)
                  + mlm_head_flops(config, batch * positions))


def classifier_step_flops(config: Mapping[str, Any], batch: int, length: int, labels: int,
                          training: bool) -> float:
    """FLOPs of a classifier step (training: 3 forward passes) on a ``[batch, length]`` batch."""
    forward = encoder_flops(config, batch, length) + classifier_flops(config, batch, labels)
    return 3.0 * forward if training else forward
