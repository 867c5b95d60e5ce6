#!/usr/bin/env python
"""AFQMC (CLUE): do two customer questions mean the same? (pairs, 2 labels)

`make finetune TASK=afqmc MODEL=DIR` runs `finetune/afqmc.py --data DATA --model DIR --out OUT`.
Defaults here: maxlen 128, 3 epochs, batch 32, lr 2e-5; any `wobert finetune` option overrides them.
"""
import sys

from wobert.commands.finetune import task_script

if __name__ == "__main__":
    sys.exit(task_script("afqmc", maxlen=128, epochs=3, batch_size=32, lr=2e-5))
