"""Word model against char model: same architecture, seeds and budgets, on the same tasks.

Each task is read once and tokenized once per model; every (task, model, seed) run is a
``wobert.finetune.finetune`` call whose ``result.json`` lands in ``OUT/<task>/<kind>/seed<S>/``; for each
seed the char model runs, then the word model, so that a busier spell of a shared machine slows both.
The summary (mean and sample standard deviation over seeds) goes to ``comparison.json``,
``comparison.md`` and ``comparison.png`` (dev accuracy, training and inference speed side by side).
"""
from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from wobert.checks import check_output_dir
from wobert.errors import UserError
from wobert.finetune import (
    FinetuneConfig,
    PretrainedModel,
    architecture,
    encode_task,
    finetune,
    load_pretrained,
)
from wobert.jsonfile import write_json
from wobert.tasks import TaskSpec, load_task

KINDS = ("char", "word")
METRICS = ("dev_accuracy", "dev_macro_f1", "train_examples_per_s", "inference_examples_per_s")


def check_same_architecture(char: PretrainedModel, word: PretrainedModel) -> None:
    """Refuse models of the wrong tokenizer level, or that differ in anything but the vocabulary."""
    for role, model in (("char", char), ("word", word)):
        if model.kind != role:
            raise UserError(f"the {role} model {model.path} holds a {model.kind}-level tokenizer "
                            f"({'no ' if model.kind == 'char' else ''}tokenizer_config.json with words)")
    a, b = architecture(char.config), architecture(word.config)
    diff = [f"{k}: {a.get(k)} vs {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diff:
        raise UserError(f"char model {char.path} and word model {word.path} differ in architecture "
                        f"({'; '.join(diff)}): a comparison needs the same one")


def mean_sd(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean and sample standard deviation (0 for a single value) of the non-missing values."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "sd": None}
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and model (``run["model_role"]``: char or word): mean/sd of the metrics over
    seeds; word/char ratios of the speeds."""
    tasks: dict[str, Any] = {}
    for run in runs:
        entry = tasks.setdefault(run["task"], {"majority_baseline": run["majority_baseline"]})
        entry.setdefault(run["model_role"], []).append(run)
    summary = {}
    for task, entry in tasks.items():
        out: dict[str, Any] = {"majority_baseline": entry["majority_baseline"]}
        for kind in KINDS:
            results = entry.get(kind, [])
            out[kind] = {m: mean_sd([r[m] for r in results]) for m in METRICS}
            out[kind]["tokens_per_example"] = results[0]["tokens_per_example"]["dev"] if results else None
            out[kind]["seeds"] = [r["config"]["seed"] for r in results]
        for metric in ("train_examples_per_s", "inference_examples_per_s"):
            c, w = out["char"][metric]["mean"], out["word"][metric]["mean"]
            out[f"word_vs_char_{metric}"] = w / c if c and w else None
        c, w = out["char"]["dev_accuracy"]["mean"], out["word"]["dev_accuracy"]["mean"]
        out["word_minus_char_accuracy"] = w - c if c is not None and w is not None else None
        summary[task] = out
    return summary


def _fmt(stat: dict[str, float | None], scale: float = 1.0, digits: int = 2) -> str:
    if stat["mean"] is None:
        return "-"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['sd'] * scale:.{digits}f}"


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value else "-"


def markdown(report: dict[str, Any]) -> str:
    """The comparison as a markdown table with the setup above it."""
    setup = report["setup"]
    lines = [
        "# Word vs char model",
        "",
        *(f"- {k} model: `{setup[f'{k}_model']}` ({setup['tokenizers'][k]}-level tokenizer, "
          f"vocab {setup['vocab_sizes'][k]})" for k in KINDS),
        f"- architecture: {json.dumps(setup['architecture'])}",
        f"- seeds {setup['seeds']}; lr {setup['config']['lr']}, epochs {setup['config']['epochs']}, "
        f"batch {setup['config']['batch_size']} (dev {setup['config']['eval_batch_size']}), "
        f"maxlen {setup['config']['maxlen']}, "
        f"pooling {setup['config']['pooling']}, patience {setup['config']['patience']}",
        "- mean ± sample sd over seeds; accuracy and macro-F1 in % on dev; examples/s of the "
        "model alone (the fastest training epoch and the fastest dev pass of each run), length-bucketed batches",
        "",
        "| task | model | tokens/example | dev accuracy | dev macro-F1 | train ex/s | inference ex/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for task, s in report["summary"].items():
        for kind in KINDS:
            k = s[kind]
            tokens = f"{k['tokens_per_example']:.1f}" if k["tokens_per_example"] else "-"
            lines.append(f"| {task} | {kind} | {tokens} | {_fmt(k['dev_accuracy'], 100)} | "
                         f"{_fmt(k['dev_macro_f1'], 100)} | {_fmt(k['train_examples_per_s'], digits=1)} | "
                         f"{_fmt(k['inference_examples_per_s'], digits=1)} |")
    lines += ["", "| task | majority baseline | word − char accuracy | word/char train speed | "
              "word/char inference speed |", "|---|---:|---:|---:|---:|"]
    for task, s in report["summary"].items():
        base = f"{s['majority_baseline'] * 100:.2f}" if s["majority_baseline"] is not None else "-"
        delta = s["word_minus_char_accuracy"]
        train, infer = (s[f"word_vs_char_{m}"] for m in ("train_examples_per_s", "inference_examples_per_s"))
        lines.append(f"| {task} | {base} | {'-' if delta is None else f'{delta * 100:+.2f}'} | "
                     f"{_ratio(train)} | {_ratio(infer)} |")
    return "\n".join(lines) + "\n"


PANELS = (("dev_accuracy", 100, "dev accuracy (%)"), ("train_examples_per_s", 1, "training examples/s"),
          ("inference_examples_per_s", 1, "inference examples/s"))


def plot(report: dict[str, Any], path: Path) -> None:
    """Three panels: dev accuracy (with the majority baseline), training and inference
    examples/s (with the word/char ratio over each task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    tasks = list(summary)
    xs = range(len(tasks))
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 + 3.5 * len(tasks), 4))
    for ax, (metric, scale, title) in zip(axes, PANELS):
        for i, kind in enumerate(KINDS):
            stats = [summary[t][kind][metric] for t in tasks]
            ax.bar([x + (i - 0.5) * 0.38 for x in xs], [(s["mean"] or 0) * scale for s in stats], 0.38,
                   label=f"{kind} model", yerr=[(s["sd"] or 0) * scale for s in stats], capsize=4,
                   color=f"C{i}")
        for x, task in zip(xs, tasks):
            ratio = summary[task].get(f"word_vs_char_{metric}")
            if ratio:
                top = max(summary[task][k][metric]["mean"] or 0 for k in KINDS)
                ax.annotate(f"{ratio:.2f}x", (x, top), ha="center", va="bottom")
        ax.set_xticks(list(xs), tasks)
        ax.set_title(title)
        ax.margins(y=0.15)
    for x, task in zip(xs, tasks):
        base = summary[task]["majority_baseline"]
        if base is not None:
            axes[0].hlines(base * 100, x - 0.4, x + 0.4, colors="k", linestyles="dashed",
                           label="majority class" if x == 0 else None)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(f"word vs char, mean ± sd over seeds {report['setup']['seeds']}")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(
    char_model: str | Path,
    word_model: str | Path,
    tasks: Sequence[str | TaskSpec],
    seeds: Sequence[int],
    data: str | Path | None,
    config: FinetuneConfig,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Finetune both models on every task with every seed; write and return the comparison."""
    check_output_dir(out_dir)
    models = {"char": load_pretrained(char_model), "word": load_pretrained(word_model)}
    check_same_architecture(models["char"], models["word"])
    out = Path(out_dir)
    runs = []
    loaded = [load_task(task, data) for task in tasks]  # every task's files checked before any training
    encodings = [{kind: encode_task(model.tokenizer, task_data, config) for kind, model in models.items()}
                 for task_data in loaded]
    for task_data, encoded in zip(loaded, encodings, strict=True):
        name = task_data.spec.name
        for seed in seeds:
            for kind, model in models.items():
                print(f"== {name}, {kind} model, seed {seed}", file=sys.stderr)
                run_out = out / name / kind / f"seed{seed}"
                result = finetune(model, task_data, encoded[kind], replace(config, seed=seed), run_out)
                runs.append({**result, "model_role": kind})
    report = {
        "setup": {"char_model": str(models["char"].path), "word_model": str(models["word"].path),
                  "tokenizers": {k: m.kind for k, m in models.items()},
                  "vocab_sizes": {k: m.config["vocab_size"] for k, m in models.items()},
                  "architecture": architecture(models["char"].config), "seeds": list(seeds),
                  "config": {k: v for k, v in vars(config).items() if k != "seed"}},
        "summary": summarize(runs),
        "runs": [{k: r[k] for k in ("task", "model_role", "tokenizer", "dev_accuracy", "dev_macro_f1",
                                    "train_examples_per_s", "inference_examples_per_s", "best")}
                 | {"seed": r["config"]["seed"]} for r in runs],
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "comparison.json", report)
    (out / "comparison.md").write_text(markdown(report), encoding="utf-8")
    plot(report, out / "comparison.png")
    return report
