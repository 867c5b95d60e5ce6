"""A cache of a function's values by key, emptied when it holds too many."""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

#: distinct keys a cache keeps before it starts again
CACHE_SIZE = 200_000


class Cache(dict):
    """key -> ``compute(key)``, computed on first use and kept until ``size`` keys are
    (then the cache starts again)."""

    def __init__(self, compute: Callable[[Any], Any], size: int = CACHE_SIZE) -> None:
        super().__init__()
        self._compute, self._size = compute, size

    def __missing__(self, key: Hashable) -> Any:
        if len(self) >= self._size:
            self.clear()
        value = self[key] = self._compute(key)
        return value
