"""``make pretrain``: ``pretrain/run.py CONFIG --data DIR --out DIR [options]`` = ``wobert pretrain``."""
import sys

from wobert.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
