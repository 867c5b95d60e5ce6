"""MLM pretraining: the training loop, logs, checkpoints, exact resume, two workers, bad input,
and the char-to-word recipe on real data."""
from __future__ import annotations

import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from processes import wait_until
from synthetic_pretrain import SyntheticMLM, write_vocab

from wobert.backend import keras, set_seed, tf
from wobert.checkpoints import Checkpoints
from wobert.cli import UserError
from wobert.model import build_mlm_model, check_bert_config, read_vocabulary
from wobert.pretrain import PretrainConfig, Trainer, load_config, train

HERE = Path(__file__).resolve().parent
MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             hidden_act="gelu", max_position_embeddings=32, type_vocab_size=2,
             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
SMALL = dict(MODEL, num_hidden_layers=1)  # quicker to trace and compile (subprocesses, XLA)
TRAIN = dict(batch_size=8, learning_rate=5e-3, warmup_steps=2, log_every=1, seed=1)


@pytest.fixture
def vocab(tmp_path):
    return read_vocabulary(write_vocab(tmp_path / "vocab", 60))


@pytest.mark.parametrize("change, message", [
    ({"num_attention_heads": 3}, "hidden_size 32 is not divisible by num_attention_heads 3"),
    ({"max_position_embeddings": 8}, "^pretrain config: model: the data's maxlen 16 exceeds max_position_embeddings 8"),
    ({"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer"),
    ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\)"),
    ({"hidden_act": "nope"}, "unknown hidden_act 'nope'"),
])
def test_impossible_model_sizes_fail_before_training(vocab, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):  # in the config, or (maxlen) at the start of training
        config = PretrainConfig(model=dict(MODEL, **change), steps=2, **TRAIN)
        train(config, SyntheticMLM(vocab.size, vocab.sha256), tmp_path / "run", vocab)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_warmup_as_long_as_the_run_is_warned_about(vocab, tmp_path, caplog):
    # warmup_steps 2; the warning comes before the model is built, which then stops the run (cheaply)
    config = PretrainConfig(model=dict(SMALL, max_position_embeddings=8), steps=2, **TRAIN)
    with caplog.at_level(logging.WARNING, "wobert"), pytest.raises(UserError, match="maxlen 16 exceeds"):
        train(config, SyntheticMLM(vocab.size, vocab.sha256), tmp_path / "run", vocab)
    assert "warmup_steps 2 >= steps 2: the learning rate never reaches 0.005" in caplog.text


def test_vocab_that_does_not_match_the_data_fails_clearly(vocab, tmp_path):
    config = PretrainConfig(model=MODEL, steps=2, **TRAIN)
    with pytest.raises(UserError, match="built with a vocab of 61 tokens, but .*vocab.txt has 60"):
        train(config, SyntheticMLM(61), tmp_path / "run", vocab)
    with pytest.raises(UserError, match="built with another vocab.txt"):
        train(config, SyntheticMLM(60, "0" * 64), tmp_path / "run", vocab)


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": MODEL, "stepz": 3}))
    with pytest.raises(UserError, match=r"c.json: unknown key\(s\) stepz"):
        load_config(path)
    path.write_text(json.dumps({"model": MODEL, "batch_size": 0}))
    with pytest.raises(UserError, match="c.json: pretrain config: batch_size must be a positive integer"):
        load_config(path)
    path.write_text(json.dumps({"model": dict(MODEL, num_attention_heads=3)}))
    with pytest.raises(UserError, match="c.json: pretrain config: model: hidden_size 32 is not divisible by "):
        load_config(path)
    path.write_text(json.dumps({"model": MODEL, "learning_rate": "0.1"}))
    with pytest.raises(UserError, match="c.json: pretrain config: learning_rate must be a number, not '0.1'"):
        load_config(path)
    for name in ("tiny", "small", "base"):
        config = load_config(HERE.parent / "pretrain" / f"{name}.json")
        check_bert_config(config.model, maxlen=128)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_logs_falling_loss_tensorboard_and_checkpoints(vocab, tmp_path):
    config = PretrainConfig(model=MODEL, steps=9, accumulate=2, checkpoint_every=3,
                            keep_checkpoints=2, **TRAIN)
    result = train(config, SyntheticMLM(vocab.size, vocab.sha256), tmp_path / "run", vocab)
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == list(range(1, 10))
    assert np.mean([r["loss"] for r in records[-3:]]) < records[0]["loss"] - 0.15
    assert records[0]["lr"] == 0.0 and records[2]["lr"] == pytest.approx(5e-3)
    assert result["export"] == str(tmp_path / "run" / "export")
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "step-00000006", "step-00000009"]
    state = json.loads((tmp_path / "run/checkpoints/step-00000009/state.json").read_text())
    assert (state["step"], state["data_position"]) == (9, 18)
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    tags = set()
    for raw in tf.data.TFRecordDataset([str(p) for p in events]):
        event = tf.compat.v1.Event.FromString(raw.numpy())
        tags |= {(v.tag, v.metadata.plugin_data.plugin_name) for v in event.summary.value}
    assert ("loss", "scalars") in tags and ("tokens_per_sec", "scalars") in tags
    with pytest.raises(UserError, match="already holds checkpoints .*pass --resume"):
        train(config, SyntheticMLM(vocab.size, vocab.sha256), tmp_path / "run", vocab)
    other = read_vocabulary(write_vocab(tmp_path / "other", 60 + 1))
    with pytest.raises(UserError, match="trained with another vocab.txt"):
        train(config, SyntheticMLM(61, other.sha256), tmp_path / "run", other, resume=True)


@pytest.fixture
def restore_policy():
    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)


def test_mixed_precision_steps_run_on_cpu_too(vocab, restore_policy):
    config = PretrainConfig(model=MODEL, steps=3, **TRAIN)
    set_seed(0)
    trainer = Trainer(lambda: build_mlm_model(dict(MODEL, vocab_size=vocab.size)), config,
                      mixed_precision=True)
    data = SyntheticMLM(vocab.size).dataset(8, seed=0, shuffle=False)
    iterator = iter(data)
    losses = []
    for _ in range(10):
        (loss, _, weight, _), norm, good = trainer.step(iterator)
        losses.append(loss / weight)
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < losses[0] - 0.05
    assert int(trainer.optimizer.skipped) == 0  # no step skipped for overflow
    assert float(trainer.loss_scale.scale) == 2.0**15
    layers = {layer.name: layer for layer in trainer.mlm.model.layers}
    assert layers["Transformer-0-FeedForward"].compute_dtype == "float16"
    assert layers["MLM-Dense"].compute_dtype == "float32"
    assert layers["MLM-Tied-Output"].compute_dtype == "float16"
    assert all(v.dtype == tf.float32 for v in trainer.variables)


def test_reseeding_restarts_the_dropout_streams_without_retracing(vocab, tmp_path):
    set_seed(0)
    config = PretrainConfig(model=SMALL, steps=10, accumulate=2, **TRAIN)
    trainer = Trainer(lambda: build_mlm_model(dict(SMALL, vocab_size=vocab.size)), config)
    batch = iter(SyntheticMLM(vocab.size).dataset(8, seed=0, shuffle=False).take(1).repeat())
    start = trainer.checkpoint.write(str(tmp_path / "start"))

    def losses(seed: int, accumulate: int = 1) -> list[float]:  # from the same weights, one batch
        trainer.checkpoint.read(start).assert_consumed()
        trainer.reseed(seed)
        return [float(trainer.step(batch, accumulate)[0][0]) for _ in range(3)]

    first = losses(7)
    assert len(set(first)) == 3  # each step draws new masks
    assert losses(7) == first and losses(8)[0] != first[0]
    assert losses(7, accumulate=2)[0] != 2 * first[0]  # a micro-step draws masks of its own
    assert trainer.train_step.experimental_get_tracing_count() == 1
    assert trainer.micro_step.experimental_get_tracing_count() == 1


def test_xla_training_steps_match_the_plain_ones(vocab):
    model = dict(SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, vocab_size=vocab.size)
    losses = []
    for jit in (False, True):
        set_seed(0)
        config = PretrainConfig(model=SMALL, steps=4, accumulate=2, jit_compile=jit, **TRAIN)
        trainer = Trainer(lambda: build_mlm_model(model), config, maxlen=24)  # batches padded: 16 -> 24
        iterator = iter(SyntheticMLM(vocab.size).dataset(8, seed=0, shuffle=False))
        losses.append([trainer.step(iterator, 2)[0][0] for _ in range(4)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    assert losses[0][-1] < losses[0][0]


COMPILES = """
from synthetic_pretrain import SyntheticMLM
from wobert.backend import set_seed
from wobert.model import build_mlm_model
from wobert.pretrain import PretrainConfig, Trainer
model = dict({model}, vocab_size=60)
set_seed(0)
for jit in (False, True):  # the plain step first: its traces must not leak into the compiled one
    config = PretrainConfig(model={{}}, steps=4, batch_size=8, jit_compile=jit)
    trainer = Trainer(lambda: build_mlm_model(model), config, maxlen=24)
    iterator = iter(SyntheticMLM(60).dataset(8, seed=0, shuffle=False))
    for _ in range(4):
        trainer.step(iterator)
"""


def test_the_xla_step_compiles_once_under_op_determinism():
    # A gradient that needs a shape at run time makes XLA compile the step anew for each
    # batch's values (seconds a step); TF's profiler logs each compile of a function.
    env = quiet_env(TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_compilation_profiler=1",
                    PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", COMPILES.format(model=SMALL)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = [int(n) for n in re.findall(r"Compiled __inference_seeded\w* (\d+) times", done.stderr)]
    assert counts, "TF logged no compile of the step: has its log format changed?"
    assert max(counts) == 1, f"the XLA step was compiled {max(counts)} times in 4 steps"


# ---------------------------------------------------------------------------------------
# Bad steps and damaged checkpoints
# ---------------------------------------------------------------------------------------


def weights(run: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(run / "export" / "bert_model.ckpt"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_a_non_finite_step_is_skipped_and_counted_and_k_in_a_row_stop_the_run(vocab, tmp_path):
    config = PretrainConfig(model=SMALL, steps=6, checkpoint_every=6, max_bad_steps=3, **TRAIN)
    data = SyntheticMLM(vocab.size, vocab.sha256, nan_batches=(2,))  # the third step's batch
    train(config, data, tmp_path / "one", vocab)
    records = read_metrics(tmp_path / "one")
    assert [r["skipped_steps"] for r in records] == [0, 0, 1, 0, 0, 0]
    assert records[2]["loss"] is None and records[2]["grad_norm"] is None
    assert all(np.isfinite(r["loss"]) for r in records if r["step"] != 3)
    assert all(np.isfinite(w).all() for w in weights(tmp_path / "one").values())

    data = SyntheticMLM(vocab.size, vocab.sha256, nan_batches=(2, 3, 4))
    with pytest.raises(UserError, match=r"steps 3-5: 3 in a row had a non-finite loss or gradient norm "
                       r"and were skipped \(max_bad_steps 3\): stopped at step 5; the last good "
                       r"checkpoint is .*three/checkpoints/step-00000002\."):
        train(replace(config, checkpoint_every=2), data, tmp_path / "three", vocab)
    assert [r["skipped_steps"] for r in read_metrics(tmp_path / "three")] == [0, 0, 1, 1, 1]


def test_resume_falls_back_past_damaged_checkpoints_saying_so(vocab, tmp_path, caplog):
    config = PretrainConfig(model=SMALL, steps=6, checkpoint_every=2, keep_checkpoints=3, **TRAIN)

    def data():
        return SyntheticMLM(vocab.size, vocab.sha256)

    run, checkpoints = tmp_path / "run", tmp_path / "run" / "checkpoints"
    train(config, data(), run, vocab)
    expected = read_metrics(run)
    cut = checkpoints / "step-00000006" / "ckpt.data-00000-of-00001"
    cut.write_bytes(cut.read_bytes()[:1000])  # truncated data file
    flipped = checkpoints / "step-00000004" / "input-0.data-00000-of-00001"
    raw = bytearray(flipped.read_bytes())
    raw[len(raw) // 2] ^= 1  # a flipped bit
    flipped.write_bytes(bytes(raw))
    with caplog.at_level("WARNING", logger="wobert.pretrain"):
        data_source = data()
        train(config, data_source, run, vocab, resume=True)
    assert "checkpoint step-00000006 is damaged (ckpt.data-00000-of-00001 has 1,000 bytes" in caplog.text
    assert "checkpoint step-00000004 is damaged (input-0.data-00000-of-00001 is not what was written" \
        in caplog.text and "resuming from " + str(checkpoints / "step-00000002") in caplog.text
    assert data_source.skipped == [0]  # the input position restored, no batch replayed
    assert [r["loss"] for r in read_metrics(run)] == [r["loss"] for r in expected]
    for step in (2, 4, 6):
        (checkpoints / f"step-{step:08d}" / "ckpt.index").unlink()  # a missing index
    with pytest.raises(UserError, match=r"no complete checkpoint in .*: step-00000006: ckpt.index is "
                                        r"missing; step-00000004: .*; step-00000002: "):
        train(config, data(), run, vocab, resume=True)


# ---------------------------------------------------------------------------------------
# Subprocess runs: kill -9 and resume, two workers
# ---------------------------------------------------------------------------------------


def run_spec(tmp_path: Path, name: str, vocab, config: dict, **extra) -> tuple[list[str], Path]:
    spec = tmp_path / f"{name}.json"
    spec.write_text(json.dumps({"config": config, "vocab": str(vocab.directory), **extra}))
    out = tmp_path / name
    return [sys.executable, str(HERE / "synthetic_pretrain.py"), str(out), str(spec)], out


def quiet_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **extra}


def finish(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    """Wait for all; kill the stragglers; fail with the stderr of any that failed."""
    deadline, outs = time.monotonic() + timeout, []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outs


def test_resume_after_kill_9_repeats_the_uninterrupted_losses(vocab, tmp_path):
    config = dict(model=SMALL, steps=8, accumulate=2, checkpoint_every=4, keep_checkpoints=2,
                  **TRAIN)
    whole_cmd, whole = run_spec(tmp_path, "whole", vocab, config)
    killed_cmd, killed = run_spec(tmp_path, "killed", vocab, config)
    procs = [subprocess.Popen(whole_cmd, env=quiet_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)]
    victim = subprocess.Popen(killed_cmd, env=quiet_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not (killed / "checkpoints" / "step-00000004" / "state.json").exists():
            assert victim.poll() is None and time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    done = [r["step"] for r in read_metrics(killed)]
    assert done[-1] < 8, "the run finished before it could be killed"
    resume_cmd, _ = run_spec(tmp_path, "killed", vocab, config, resume=True)
    procs.append(subprocess.Popen(resume_cmd, env=quiet_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
    outs = finish(procs, timeout=120)
    assert json.loads(outs[1].splitlines()[-1])["skipped_batches"] == [0]  # restored, not replayed
    expected, resumed = read_metrics(whole), read_metrics(killed)
    assert [r["step"] for r in resumed] == list(range(1, 9))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in expected]
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in expected]
    a = tf.train.load_checkpoint(str(whole / "export" / "bert_model.ckpt"))
    b = tf.train.load_checkpoint(str(killed / "export" / "bert_model.ckpt"))
    for name in a.get_variable_to_shape_map():
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name))


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start(cmd: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=quiet_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def complete(run: Path, step: int, workers: int = 1) -> bool:
    """Whether every worker's part of checkpoint ``step`` is written."""
    parts = [f"step-{step:08d}"] + [f"step-{step:08d}.worker-{k}" for k in range(1, workers)]
    return all((run / "checkpoints" / part / "state.json").is_file() for part in parts)


def test_two_workers_and_two_replicas_reach_the_weights_of_one_and_two_resume_exactly_after_a_kill(
        vocab, tmp_path):
    """Without dropout, two replicas reach one's weights (their masks would have other shapes);
    with it, two workers reach those of one worker with two replicas, and resume exactly."""
    config = dict(model=SMALL, steps=8, accumulate=2, checkpoint_every=4, shuffle=False,
                  **dict(TRAIN, batch_size=8))
    still = dict(config, model=dict(SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    one_cmd, one = run_spec(tmp_path, "one", vocab, still)
    still_cmd, mirrored_still = run_spec(tmp_path, "mirrored-still", vocab, still, cpu_replicas=2)
    two_cmd, two = run_spec(tmp_path, "two", vocab, config)
    mirrored_cmd, mirrored = run_spec(tmp_path, "mirrored", vocab, config, cpu_replicas=2)
    killed_cmd, killed = run_spec(tmp_path, "killed", vocab, config)
    resume_cmd, _ = run_spec(tmp_path, "killed", vocab, config, resume=True)

    def workers(cmd: list[str], ports: list[int]) -> list[subprocess.Popen]:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        return [start(cmd, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
                for i in range(2)]

    ports = free_ports(4)
    victims = workers(killed_cmd, ports[:2])  # one of two workers killed mid-run, as a lost machine
    procs = [start(one_cmd), start(still_cmd), start(mirrored_cmd), *workers(two_cmd, ports[2:])]
    try:
        wait_until(lambda: complete(killed, 4, workers=2), victims[1], "checkpoint 4 of both workers",
                   timeout=300)
        victims[1].send_signal(signal.SIGKILL)
        _, err = victims[0].communicate(timeout=120)  # the other one stops: it lost its peer
    finally:
        for proc in victims:
            proc.kill()
            proc.wait()
    assert victims[0].returncode == 2 and "a worker of the cluster stopped" in err.splitlines()[-1], err[-2000:]
    assert read_metrics(killed)[-1]["step"] < 8, "the run finished before it could be killed"
    outs = finish(procs + workers(resume_cmd, free_ports(2)), timeout=400)
    assert json.loads(outs[4].splitlines()[-1])["export"] is None  # worker 1 does not export
    assert [json.loads(out.splitlines()[-1])["skipped_batches"] for out in outs[5:]] == [[0], [0]]
    runs = (one, mirrored_still, mirrored, two, killed)
    metrics = {run: read_metrics(run) for run in runs}
    losses = {run: [r["loss"] for r in metrics[run]] for run in runs}
    trained = {run: weights(run) for run in runs}
    for reference, run in ((one, mirrored_still), (mirrored, two)):
        np.testing.assert_allclose(losses[run], losses[reference], rtol=1e-5)
        assert [r["masked_tokens"] for r in metrics[run]] == [r["masked_tokens"] for r in metrics[reference]]
        assert trained[run].keys() == trained[reference].keys()
        for name, value in trained[reference].items():
            np.testing.assert_allclose(value, trained[run][name], atol=2e-5, err_msg=f"{run.name}: {name}")
    assert not np.allclose(losses[mirrored], losses[mirrored_still], rtol=1e-3), "dropout changed no loss"
    assert [r["step"] for r in metrics[killed]] == list(range(1, 9))
    assert losses[killed] == losses[two]
    for name, value in trained[two].items():
        np.testing.assert_array_equal(value, trained[killed][name], err_msg=name)


def test_a_failed_checkpoint_write_stops_the_run_and_leaves_the_previous_one_usable(vocab, tmp_path):
    config = dict(model=SMALL, steps=4, checkpoint_every=2, keep_checkpoints=2, **TRAIN)
    train(PretrainConfig(**config), SyntheticMLM(vocab.size, vocab.sha256), tmp_path / "run", vocab)
    resume, run = run_spec(tmp_path, "run", vocab, dict(config, steps=8), resume=True)

    def small_disk() -> None:  # files beyond 64 KB cannot be written: the checkpoint's data
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    full = subprocess.run(resume, env=quiet_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=small_disk)
    last = full.stderr.strip().splitlines()[-1]
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr[-3000:]
    assert re.fullmatch(r"wobert pretrain: error: could not write checkpoint .*/step-00000006 \(.*File "
                        r"too large\): stopped at step 6; the newest checkpoint, .*/step-00000004, is as "
                        r"it was: free disk space and run again with --resume", last), last
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    assert Checkpoints(run / "checkpoints", 2).newest_complete()[0].name == "step-00000004"


@pytest.fixture(scope="module")
def tiny_records(tmp_path_factory) -> Path:
    """Records of the handmade corpus of test_records (no shared data needed)."""
    from test_records import SENTENCES, WORDS, write_corpus

    from wobert.records import DataOptions, build_records
    from wobert.tokenizer import SPECIAL_TOKENS, Tokenizer, extend_vocab

    root = tmp_path_factory.mktemp("tiny_records")
    tokens = list(SPECIAL_TOKENS) + sorted({ch for s in SENTENCES for ch in s})
    Tokenizer(extend_vocab({t: i for i, t in enumerate(tokens)}, WORDS)).save(root / "vocab")
    write_corpus(root / "corpus.txt", 200, seed=3)
    build_records(DataOptions(corpus=[str(root / "corpus.txt")], vocab=str(root / "vocab"), maxlen=32,
                              shard_chars=3000), root / "data", progress=False)
    return root / "data"


def test_pretraining_refuses_damaged_records_by_name(tiny_records, tmp_path, capsys):
    from test_records import damage

    config = tmp_path / "config.json"
    config.write_text(json.dumps(dict(model=SMALL, steps=2, checkpoint_every=2, **TRAIN)))
    for how, message in (("truncate", "damaged records: shard-00001.tfrecord has "),
                         ("flip", "damaged records: shard-00001.tfrecord differs from its sha256")):
        data = tmp_path / how
        shutil.copytree(tiny_records, data)
        damage(data / "shard-00001.tfrecord", how)
        assert pretrain_cli(config, "--data", data, "--out", tmp_path / f"{how}-run") == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / f"{how}-run" / "checkpoints").exists()


# ---------------------------------------------------------------------------------------
# Real data: char model, then a word model initialised from it (the WoBERT recipe)
# ---------------------------------------------------------------------------------------

REAL_MODEL = dict(MODEL, hidden_size=64, intermediate_size=128, max_position_embeddings=64,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    """~300 KB of zhwiki, a 3000-word vocabulary on bert-base-chinese, char and word records."""
    from wobert.records import DataOptions, build_records
    from wobert.vocab import VocabSpec, build_vocab

    base = shared_data / "bert-base-chinese" / "vocab.txt"
    corpus = shared_data / "corpus" / "zhwiki_sampled.txt"
    if not (base.is_file() and corpus.is_file()):
        pytest.skip("bert-base-chinese/vocab.txt or corpus/zhwiki_sampled.txt is missing")
    root = tmp_path_factory.mktemp("real")
    sample = root / "sample.txt"
    with open(corpus, encoding="utf-8") as f, open(sample, "w", encoding="utf-8") as out:
        size = 0
        for line in f:
            out.write(line)
            size += len(line.encode("utf-8"))
            if size > 300_000:
                break
    build_vocab(VocabSpec(base_vocab=str(base), corpus=[str(sample)], num_words=3000,
                          min_count=3, curve=[]), root / "vocab")
    for name, vocab in (("char", base), ("word", root / "vocab")):
        build_records(DataOptions(corpus=[str(sample)], vocab=str(vocab), maxlen=64, seed=1),
                      root / f"{name}-data", progress=False)
    config = root / "config.json"
    config.write_text(json.dumps(dict(model=REAL_MODEL, batch_size=16, learning_rate=2e-3,
                                      warmup_steps=10, checkpoint_every=1000, log_every=10)))
    return root


def pretrain_cli(*argv: str) -> int:
    from wobert.cli import main

    return main(["pretrain", *map(str, argv)])


@pytest.fixture(scope="module")
def char_run(real):
    """A tiny char model pretrained on the sample (checkpoints at steps 50 and 100)."""
    assert pretrain_cli(real / "config.json", "--data", real / "char-data", "--out",
                        real / "char", "--steps", 100, "--checkpoint-every", 50) == 0
    return real / "char"


def test_word_model_initialised_from_a_char_model_starts_lower_and_learns(real, char_run):
    char = read_metrics(char_run)
    assert np.mean([r["loss"] for r in char[-3:]]) < char[0]["loss"] - 1.5
    assert not (char_run / "export" / "tokenizer_config.json").exists()

    word_args = [real / "config.json", "--data", real / "word-data", "--log-every", 1,
                 "--learning-rate", 1e-3]
    assert pretrain_cli(*word_args, "--out", real / "word", "--steps", 40,
                        "--init", char_run / "export") == 0
    assert pretrain_cli(*word_args, "--out", real / "scratch", "--steps", 1) == 0
    word, scratch = read_metrics(real / "word"), read_metrics(real / "scratch")
    vocab_size = read_vocabulary(real / "vocab").size
    assert scratch[0]["loss"] == pytest.approx(np.log(vocab_size), abs=0.3)
    assert word[0]["loss"] < scratch[0]["loss"] - 1.0
    assert np.mean([r["loss"] for r in word[-10:]]) < word[0]["loss"] - 0.3

    from wobert.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(real / "word" / "export")
    assert type(tokenizer).__name__ == "Tokenizer" and tokenizer.vocab_size == vocab_size


def test_resume_on_records_continues_the_same_batches(real, char_run, tmp_path):
    cut = tmp_path / "cut"
    shutil.copytree(char_run, cut)
    shutil.rmtree(cut / "checkpoints" / "step-00000100")  # as if killed after step 50
    shutil.rmtree(cut / "export")
    assert pretrain_cli(real / "config.json", "--data", real / "char-data", "--out", cut,
                        "--steps", 100, "--checkpoint-every", 50, "--resume") == 0

    def losses(run: Path) -> list[tuple]:
        return [(r["step"], r["loss"], r["accuracy"], r["lr"]) for r in read_metrics(run)]

    assert losses(cut) == losses(char_run) and len(losses(cut)) == 10


def test_bad_data_and_vocab_fail_before_training(real, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert pretrain_cli(real / "config.json", "--data", tmp_path / "empty", "--out", tmp_path / "o") == 2
    assert "manifest.json not found" in capsys.readouterr().err
    assert pretrain_cli(real / "config.json", "--data", real / "word-data", "--out", tmp_path / "o",
                        "--vocab", real / "char-data" / "vocab") == 2
    assert "built with a vocab of 16" in capsys.readouterr().err
    assert pretrain_cli(real / "config.json", "--data", real / "char-data", "--out", tmp_path / "o",
                        "--init", real / "nothing") == 2
    assert "BERT model directory not found" in capsys.readouterr().err
    assert not (tmp_path / "o" / "checkpoints").exists()


@pytest.mark.long
def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path):
    # bench/gpu_check.sh only runs where a GPU is lent; its --cpu dry run keeps the script
    # itself working: both models, both precisions, XLA on and off, and its checks.
    cmd = [sys.executable, str(HERE.parent / "bench" / "gpu_check.py"), "--cpu", "--steps", "10",
           "--batch", "4", "--lines", "120", "--layers", "1", "--hidden", "32", "--lr", "1e-2"]
    done = subprocess.run(cmd, env=quiet_env(TMPDIR=str(tmp_path)), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "all checks passed" in done.stdout
    rows = re.findall(r"^\| (float32|mixed_float16) \| (on|off) \| .* \| \d+\.\d\dx \|$",
                      done.stdout, re.M)
    assert rows == [("float32", "off"), ("mixed_float16", "off"), ("float32", "on"), ("mixed_float16", "on")]
