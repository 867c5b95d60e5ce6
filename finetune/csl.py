#!/usr/bin/env python
"""CSL (CLUE): are the keywords (joined, first segment) real keywords of the abstract? (2 labels)

`make finetune TASK=csl MODEL=DIR` runs `finetune/csl.py --data DATA --model DIR --out OUT`.
Defaults here: maxlen 256, 3 epochs, batch 16, lr 2e-5; any `wobert finetune` option overrides them.
"""
import sys

from wobert.commands.finetune import task_script

if __name__ == "__main__":
    sys.exit(task_script("csl", maxlen=256, epochs=3, batch_size=16, lr=2e-5))
