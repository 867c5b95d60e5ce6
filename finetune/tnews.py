#!/usr/bin/env python
"""TNEWS (CLUE): short news titles into 15 categories.

`make finetune TASK=tnews MODEL=DIR` runs `finetune/tnews.py --data DATA --model DIR --out OUT`.
Defaults here: maxlen 64, 3 epochs, batch 32, lr 2e-5; any `wobert finetune` option overrides them.
"""
import sys

from wobert.commands.finetune import task_script

if __name__ == "__main__":
    sys.exit(task_script("tnews", maxlen=64, epochs=3, batch_size=32, lr=2e-5))
