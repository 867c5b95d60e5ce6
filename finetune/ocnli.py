#!/usr/bin/env python
"""OCNLI (CLUE): natural language inference on original Chinese pairs (3 labels; '-' rows skipped).

`make finetune TASK=ocnli MODEL=DIR` runs `finetune/ocnli.py --data DATA --model DIR --out OUT`.
Defaults here: maxlen 128, 3 epochs, batch 32, lr 3e-5; any `wobert finetune` option overrides them.
"""
import sys

from wobert.commands.finetune import task_script

if __name__ == "__main__":
    sys.exit(task_script("ocnli", maxlen=128, epochs=3, batch_size=32, lr=3e-5))
