"""wobert: Chinese word-level BERT pretraining pipeline.

Stages, one module each: corpus -> vocab -> records -> model -> pretrain -> finetune -> compare.
``from wobert import Tokenizer`` does not import TensorFlow.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {"Tokenizer": "wobert.tokenizer", "CharTokenizer": "wobert.tokenizer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wobert' has no attribute {name!r}")


__all__ = ["Tokenizer", "CharTokenizer", "__version__"]
