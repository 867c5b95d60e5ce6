#!/usr/bin/env python
"""CMNLI (CLUE): translated MNLI pairs (3 labels; '-' rows skipped).

`make finetune TASK=cmnli MODEL=DIR` runs `finetune/cmnli.py --data DATA --model DIR --out OUT`.
Defaults here: maxlen 128, 2 epochs, batch 32, lr 3e-5; any `wobert finetune` option overrides them.
"""
import sys

from wobert.commands.finetune import task_script

if __name__ == "__main__":
    sys.exit(task_script("cmnli", maxlen=128, epochs=2, batch_size=32, lr=3e-5))
