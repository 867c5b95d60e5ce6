#!/usr/bin/env python
"""Finetune on a CLUE task: ``finetune/run.py TASK --data DATA --model DIR --out OUT [options]``.

``make finetune TASK=tnews MODEL=DIR`` runs it; it is ``wobert finetune --task TASK``. Each
task's defaults (maxlen, epochs, batch size, learning rate) live with the task in
``wobert/tasks.py`` and are listed by ``wobert finetune --help``; any option overrides them.
"""
import sys

from wobert.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        argv = ["--task", *argv]
    sys.exit(main(["finetune", *argv]))
