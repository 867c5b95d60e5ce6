"""Build pretraining records from a job config:
``pretrain/build_data.py CONFIG --data DIR --out OUT [--vocab DIR] [options]``.

The config's keys are the options of ``wobert data build`` (underscores for dashes); its
corpus paths start from ``--data``. The vocabulary is ``--vocab``, else the config's
``vocab``, else ``runs/vocab`` (what ``make vocab`` builds). Options given here override
the config.
"""
import sys

from wobert.cli import main
from wobert.config import read_job
from wobert.errors import UserError

DEFAULT_VOCAB = "runs/vocab"

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        try:
            has_vocab = "vocab" in read_job(argv[0], "data")
        except (OSError, UserError):
            has_vocab = False  # `wobert data build` reports the broken config
        argv = ["--config", *argv]
        if not has_vocab and not any(a == "--vocab" or a.startswith("--vocab=") for a in argv):
            argv += ["--vocab", DEFAULT_VOCAB]
    sys.exit(main(["data", "build", *argv]))
