"""`wobert demo` on a budget small enough for the suite: all stages, then a continued run."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wobert.demo import DEFAULT_CONFIG, DONE, read_config, run_demo
from wobert.errors import UserError

REPO = Path(__file__).resolve().parents[1]

STAGES = ("data", "vocab-char", "vocab-word", "records-char", "records-word", "pretrain-char",
          "pretrain-word", "pretrain-char-continued", "compare")


def tiny_config() -> dict:
    config = read_config(DEFAULT_CONFIG)
    config["num_words"] = 3000
    config["pretrain"].update(steps=12, warmup_steps=2, checkpoint_every=6)
    config["pretrain"]["model"].update(hidden_size=32, intermediate_size=64, num_attention_heads=2)
    config["continue_steps"] = 6
    config["finetune"].update(epochs=1, max_train=600, max_dev=300, lr=3e-3)
    config["seeds"] = [1]
    return config


def test_read_config_names_the_missing_sections(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps({"seed": 1, "vocab": {}}))
    with pytest.raises(UserError, match=r"demo.json: missing key\(s\) num_words, records, pretrain, "
                                         "continue_steps, finetune, seeds$"):
        read_config(path)
    path.write_text(json.dumps({**read_config(DEFAULT_CONFIG), "continue_steps": "300"}))
    with pytest.raises(UserError, match="demo.json: demo config: continue_steps must be an integer, not '300'"):
        read_config(path)
    path.write_text(json.dumps({**read_config(DEFAULT_CONFIG), "pretrian": {}}))
    with pytest.raises(UserError, match=r"demo.json: unknown key\(s\) pretrian; known: "):
        read_config(path)
    with pytest.raises(UserError, match="demo config: seeds must be a list of integers"):
        run_demo({**read_config(DEFAULT_CONFIG), "seeds": 1}, tmp_path / "out")
    for section, change, message in (
            ("finetune", {"epochz": 1}, r"finetune: unknown key\(s\) epochz; known: "),
            ("pretrain", {"batch_size": 0}, "pretrain: batch_size must be a positive integer, not 0"),
            ("records", {"maxlen": 2}, r"records \+ records_char: maxlen must be at least 3"),
            ("seeds", [], r"demo config: seeds must be distinct, and at least one, not \[\]"),
            ("seeds", [1, 1], r"demo config: seeds must be distinct")):
        config = read_config(DEFAULT_CONFIG)
        config[section] = {**config[section], **change} if isinstance(change, dict) else change
        path.write_text(json.dumps(config))
        with pytest.raises(UserError, match=f"^{re.escape(str(path))}: {message}"):
            read_config(path)


def test_a_demo_directory_of_other_settings_is_refused_before_any_stage(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "settings.json").write_text(json.dumps({"config": dict(tiny_config(), seeds=[1, 2]), "data": None}))
    with pytest.raises(UserError, match=f"{out} holds a demo run with other settings \\(changed: seeds\\); its "
                                        "finished stages would be reused"):
        run_demo(tiny_config(), out)
    assert sorted(p.name for p in out.iterdir()) == ["settings.json"]


def test_the_demo_config_is_installed_with_the_package(tmp_path):
    """A regular (non-editable) install carries demo.json and `wobert demo` finds it there."""
    source, target = tmp_path / "src", tmp_path / "site"
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(REPO / name, source)
    shutil.copytree(REPO / "wobert", source / "wobert",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=300)
    shutil.rmtree(source)  # nothing left to find outside the install
    script = ("from wobert.demo import DEFAULT_CONFIG, read_config\n"
              "print(DEFAULT_CONFIG)\n"
              "print(sorted(read_config(DEFAULT_CONFIG)))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(target)}, timeout=120, check=True)
    shipped, sections = result.stdout.splitlines()
    assert Path(shipped) == target / "wobert" / "demo.json"
    assert sections == str(sorted(read_config(DEFAULT_CONFIG)))
    assert DEFAULT_CONFIG == REPO / "wobert" / "demo.json" and not (REPO / "demo.json").exists()


def test_demo_runs_every_stage_then_continues_an_interrupted_run(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo(tiny_config(), out)
    assert all((out / stage / DONE).is_file() for stage in STAGES)
    printed = capsys.readouterr().out
    assert "| sentiment | word |" in printed and "| sentiment | char |" in printed
    assert {r["tokenizer"] for r in report["runs"]} == {"char", "word"}
    tokens = {r: report["summary"]["sentiment"][r]["tokens_per_example"] for r in ("char", "word")}
    assert tokens["word"] < 0.9 * tokens["char"]
    assert (out / "compare" / "comparison.png").is_file()

    # interrupted in the word model's pretraining: earlier stages are reused, its
    # checkpoints resumed, and the stages after it run again
    before = {s: (out / s / DONE).stat().st_mtime_ns for s in STAGES}
    (out / "pretrain-word" / DONE).unlink()
    shutil.rmtree(out / "pretrain-word" / "export")
    shutil.rmtree(out / "compare")
    run_demo(tiny_config(), out)
    after = {s: (out / s / DONE).stat().st_mtime_ns for s in STAGES}
    assert [s for s in STAGES if before[s] != after[s]] == ["pretrain-word", "compare"]
    metrics = [json.loads(line) for line in open(out / "pretrain-word" / "metrics.jsonl")]
    assert metrics[-1]["step"] == 6
    assert "done before, reused" in capsys.readouterr().err
