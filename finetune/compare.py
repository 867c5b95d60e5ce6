#!/usr/bin/env python
"""Word vs char comparison: `make compare CHAR=DIR WORD=DIR`.

Runs `wobert compare --data DATA --char-model CHAR --word-model WORD --out OUT` (default tasks
tnews,ocnli, seeds 1,2,3); any `wobert compare` option may follow.
"""
import sys

from wobert.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
