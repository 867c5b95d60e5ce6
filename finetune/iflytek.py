#!/usr/bin/env python
"""IFLYTEK (CLUE): app descriptions into 119 categories.

`make finetune TASK=iflytek MODEL=DIR` runs `finetune/iflytek.py --data DATA --model DIR --out OUT`.
Defaults here: maxlen 256, 3 epochs, batch 32, lr 2e-5; any `wobert finetune` option overrides them.
"""
import sys

from wobert.commands.finetune import task_script

if __name__ == "__main__":
    sys.exit(task_script("iflytek", maxlen=256, epochs=3, batch_size=32, lr=2e-5))
