"""Build a vocabulary from a job config: ``vocab/build.py CONFIG --data DIR --out OUT [options]``.

The config's keys are the options of ``wobert vocab build`` (underscores for dashes); its
relative paths start from ``--data``. Options given here override the config.
"""
import sys

from wobert.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        argv = ["--config", *argv]
    sys.exit(main(["vocab", "build", *argv]))
