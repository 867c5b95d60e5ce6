"""Finetuning and the word-vs-char comparison on tiny models made here (no pretraining needed)."""
from __future__ import annotations

import json
import runpy
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from wobert.backend import build_bert, save_bert_checkpoint, set_seed
from wobert.cli import UserError, main
from wobert.compare import compare, mean_sd
from wobert.finetune import (
    FinetuneConfig,
    accuracy_and_macro_f1,
    encode_task,
    finetune,
    length_batches,
    load_pretrained,
    pad_batch,
)
from wobert.tasks import TASKS, TaskSpec, load_task
from wobert.tokenizer import SPECIAL_TOKENS, BaseTokenizer, CharTokenizer, Tokenizer
from wobert.vocabdir import write_vocab

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
            hidden_act="gelu", max_position_embeddings=128, type_vocab_size=2,
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
# From random weights a tiny BERT needs a large learning rate to learn anything in a few steps.
QUICK = dict(lr=3e-3, epochs=2, batch_size=32, maxlen=48, pooling="cls")


def make_model_dir(out: Path, tokenizer: BaseTokenizer, config: dict = TINY, seed: int = 0,
                   vocab_size: int | None = None) -> Path:
    """A pretrained-model directory as `wobert pretrain` exports it (random weights): Google BERT
    layout; a word model also gets tokenizer_config.json, a char model only vocab.txt."""
    set_seed(seed)
    config = dict(config, vocab_size=vocab_size or tokenizer.vocab_size)
    save_bert_checkpoint(build_bert(config, with_mlm=True, with_pool=True), out / "bert_model.ckpt")
    (out / "bert_config.json").write_text(json.dumps(config), encoding="utf-8")
    if tokenizer.level == "word":
        tokenizer.save(out)
    else:
        write_vocab(tokenizer.token_dict, out / "vocab.txt")
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory, base_vocab_path) -> dict[str, Path]:
    """A char model on bert-base-chinese's vocab and a word model on WoBERT's (+20,000 jieba words)."""
    from wobert.vocab import VocabSpec, build_vocab

    root = tmp_path_factory.mktemp("models")
    build_vocab(VocabSpec(base_vocab=str(base_vocab_path), num_words=20000, curve=[]), root / "vocab")
    return {
        "char": make_model_dir(root / "char", CharTokenizer(base_vocab_path)),
        "word": make_model_dir(root / "word", Tokenizer.load(root / "vocab")),
    }


def lines(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_length_batches_cover_every_example_once_with_similar_lengths():
    lengths = np.random.RandomState(0).randint(3, 60, 1000)
    for rng in (None, np.random.RandomState(1)):
        batches = length_batches(lengths, 32, rng)
        assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
        assert all(len(b) <= 32 for b in batches)
    sorted_batches = length_batches(lengths, 32)
    assert [lengths[b].max() for b in sorted_batches] == sorted(lengths[b].max() for b in sorted_batches)
    shuffled = length_batches(lengths, 32, np.random.RandomState(1))
    spread = np.mean([np.ptp(lengths[b]) for b in shuffled])
    assert spread < 10 < np.ptp(lengths)  # far less padding than random batches
    assert pad_batch([[1, 2, 3], [4], [5, 6]], np.array([1, 2])).tolist() == [[4, 0], [5, 6]]


def test_accuracy_and_macro_f1():
    gold, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    acc, f1 = accuracy_and_macro_f1(gold, pred)
    assert acc == pytest.approx(3 / 5)
    assert f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert mean_sd([1.0, 3.0]) == {"mean": 2.0, "sd": pytest.approx(2 ** 0.5)}
    assert mean_sd([None]) == {"mean": None, "sd": None}


def synthetic_task(root: Path, n: int = 240) -> dict[str, Path]:
    """A learnable custom task in JSONL with its own field names: does the review say 好 or 坏?"""
    rng = np.random.RandomState(0)
    fillers = list("这个东西真的非常我觉得还是有点")
    paths = {}
    for split, size in (("train", n), ("dev", 60), ("test", 20)):
        rows = []
        for i in range(size):
            label = int(rng.randint(2))
            words = list(rng.choice(fillers, 6)) + ["好" if label else "坏"]
            rng.shuffle(words)
            row = {"uid": f"{split}-{i}", "review": "".join(words)}
            if split != "test":
                row["polarity"] = ["neg", "pos"][label]
            rows.append(json.dumps(row, ensure_ascii=False))
        paths[split] = root / f"{split}.jsonl"
        paths[split].write_text("\n".join(rows), encoding="utf-8")  # no final newline
    return paths


@pytest.fixture(scope="module")
def small_char_model(tmp_path_factory) -> Path:
    """A char model whose vocab is the special tokens and a few characters (no shared data needed)."""
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + tuple("这个东西真的非常我觉得还是有点好坏"))}
    return make_model_dir(tmp_path_factory.mktemp("small"), CharTokenizer(vocab))


def test_custom_jsonl_task_learns_and_predicts_from_the_cli(tmp_path, small_char_model, capsys):
    paths = synthetic_task(tmp_path)
    out = tmp_path / "run"
    code = main(["finetune", "--model", str(small_char_model), "--out", str(out),
                 "--train", str(paths["train"]), "--dev", str(paths["dev"]), "--test", str(paths["test"]),
                 "--text-field", "review", "--label-field", "polarity", "--id-field", "uid",
                 "--lr", "3e-3", "--epochs", "3", "--batch-size", "16", "--maxlen", "16", "--seed", "3"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["labels"] == ["neg", "pos"] and result["tokenizer"] == "char"
    assert result["dev_accuracy"] > 0.9 > result["majority_baseline"]
    assert result["dev_accuracy"] == max(h["dev_accuracy"] for h in result["history"])
    assert result["tokens_per_example"]["dev"] == 9.0  # [CLS] + 7 characters + [SEP]
    assert result["train_examples_per_s"] > 0 and result["inference_examples_per_s"] > 0
    predictions = lines(out / "custom_predict.json")
    assert [p["id"] for p in predictions] == [f"test-{i}" for i in range(20)]
    assert {p["label"] for p in predictions} <= {"neg", "pos"}
    assert "dev accuracy" in capsys.readouterr().out


def test_early_stopping_when_dev_accuracy_stops_improving(tmp_path, small_char_model):
    paths = synthetic_task(tmp_path)
    spec = TaskSpec("custom", "review", label_field="polarity", id_field="uid")
    data = load_task(spec, train=paths["train"], dev=paths["dev"])
    model = load_pretrained(small_char_model)
    config = FinetuneConfig(lr=0.0, epochs=5, batch_size=16, maxlen=16, eval_every=2, patience=2)
    result = finetune(model, data, encode_task(model.tokenizer, data, config), config)
    assert result["stopped_early"] and result["steps"] == 6  # lr 0: no evaluation improves on the first
    assert [h["step"] for h in result["history"]] == [2, 4, 6]
    assert result["best"]["step"] == 2


def test_model_and_tokenizer_vocab_must_match(tmp_path, small_char_model, capsys):
    bad = make_model_dir(tmp_path / "bad", load_pretrained(small_char_model).tokenizer, vocab_size=50)
    with pytest.raises(UserError, match=r"vocab\.txt has 22 tokens but bert_config\.json says vocab_size 50"):
        load_pretrained(bad)
    code = main(["finetune", "--model", str(bad), "--out", str(tmp_path / "o"), "--train", "x.jsonl"])
    assert code == 2
    err = capsys.readouterr().err
    assert "vocab and model do not match" in err and "Traceback" not in err


def test_a_truncated_or_corrupted_model_fails_with_one_line(tmp_path, small_char_model, capsys):
    paths = synthetic_task(tmp_path, n=20)
    for how in ("truncated", "flipped"):
        bad = tmp_path / how
        shutil.copytree(small_char_model, bad)
        data = bad / "bert_model.ckpt.data-00000-of-00001"
        raw = bytearray(data.read_bytes())
        if how == "truncated":
            raw = raw[:len(raw) // 2]
        else:
            raw[len(raw) // 3] ^= 1
        data.write_bytes(bytes(raw))
        code = main(["finetune", "--model", str(bad), "--out", str(tmp_path / "o"), "--train",
                     str(paths["train"]), "--text-field", "review", "--label-field", "polarity"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"checkpoint {bad}/bert_model.ckpt is damaged (truncated or corrupted" in err


def test_maxlen_beyond_position_embeddings_is_refused(tmp_path, small_char_model):
    paths = synthetic_task(tmp_path, n=20)
    data = load_task(TaskSpec("custom", "review", label_field="polarity"), train=paths["train"])
    model = load_pretrained(small_char_model)
    config = FinetuneConfig(maxlen=200)
    with pytest.raises(UserError, match="maxlen 200 exceeds the model's max_position_embeddings 128"):
        finetune(model, data, encode_task(model.tokenizer, data, config), config)


def test_ocnli_script_end_to_end(tmp_path, shared_data, models, monkeypatch):
    """finetune/run.py ocnli (make finetune TASK=ocnli): the task's defaults, overridable by
    options; '-' rows counted, CLUE submission."""
    out = tmp_path / "ocnli"
    monkeypatch.setattr(sys, "argv", [
        "finetune/run.py", "ocnli", "--data", str(shared_data), "--model", str(models["word"]),
        "--out", str(out), "--max-train", "300", "--max-dev", "200", "--epochs", "1", "--maxlen", "48"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(Path(__file__).parents[1] / "finetune" / "run.py"), run_name="__main__")
    assert exit_info.value.code == 0
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["config"]["maxlen"] == 48 and result["config"]["epochs"] == 1
    assert result["config"]["lr"] == 3e-5 and result["config"]["batch_size"] == 32  # OCNLI's own
    assert result["data"]["dev"]["skipped"] == {"label '-'": 50}
    assert result["data"]["train"]["file"].endswith("train.10k.json")
    assert result["examples"] == {"train": 300, "dev": 200, "test": 3000}
    predictions = lines(out / "ocnli_predict.json")
    assert [p["id"] for p in predictions] == list(range(3000))
    assert {p["label"] for p in predictions} <= {"entailment", "neutral", "contradiction"}


def test_compare_on_tnews_both_models_beat_the_majority_class(tmp_path, shared_data, models):
    config = FinetuneConfig(max_train=2000, max_dev=600, **QUICK)
    report = compare(models["char"], models["word"], ["tnews"], [1], shared_data, config, tmp_path)
    for name in ("comparison.md", "comparison.json", "comparison.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    tnews = report["summary"]["tnews"]
    for kind in ("char", "word"):
        assert tnews[kind]["dev_accuracy"]["mean"] > tnews["majority_baseline"] + 0.03
        assert (tmp_path / "tnews" / kind / "seed1" / "result.json").is_file()
    assert tnews["word"]["tokens_per_example"] < 0.85 * tnews["char"]["tokens_per_example"]
    assert json.loads((tmp_path / "comparison.json").read_text(encoding="utf-8"))["summary"] == report["summary"]
    assert "| tnews | word |" in (tmp_path / "comparison.md").read_text(encoding="utf-8")


def test_compare_refuses_a_pair_that_differs_in_more_than_the_vocab(tmp_path, small_char_model):
    char = load_pretrained(small_char_model).tokenizer
    word = make_model_dir(tmp_path / "word", Tokenizer(char.token_dict), dict(TINY, num_hidden_layers=1))
    code = main(["compare", "--char-model", str(small_char_model), "--word-model", str(word),
                 "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--tasks", "tnews"])
    assert code == 2
    with pytest.raises(UserError, match="num_hidden_layers: 2 vs 1"):
        compare(small_char_model, word, ["tnews"], [1], tmp_path, FinetuneConfig(), tmp_path / "o")
    with pytest.raises(UserError, match="the char model .*word.* holds a word-level tokenizer"):
        compare(word, small_char_model, ["tnews"], [1], tmp_path, FinetuneConfig(), tmp_path / "o")


def test_a_task_without_its_training_file_stops_before_any_training(tmp_path, small_char_model, capsys):
    paths = synthetic_task(tmp_path)
    for task in ("tnews", "iflytek"):
        (tmp_path / "clue" / task).mkdir(parents=True)
        shutil.copy(paths["dev"], tmp_path / "clue" / task / "dev.jsonl")
    shutil.copy(paths["train"], tmp_path / "clue" / "tnews" / "train.jsonl")
    out = tmp_path / "o"
    code = main(["finetune", "--task", "iflytek", "--model", str(small_char_model), "--data", str(tmp_path),
                 "--out", str(out), "--text-field", "review", "--label-field", "polarity"])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.endswith(
        f"task iflytek has no training file in {tmp_path} (looked for train.json, train.jsonl, "
        "train.tsv): give --train FILE\n")
    char = load_pretrained(small_char_model).tokenizer
    word = make_model_dir(tmp_path / "word", Tokenizer(char.token_dict))
    spec = {name: replace(TASKS[name], text_field="review", label_field="polarity") for name in ("tnews", "iflytek")}
    with pytest.raises(UserError, match=r"task iflytek has no training file \(looked for train\.json"):
        compare(small_char_model, word, list(spec.values()), [1], tmp_path, FinetuneConfig(), out)
    assert not (out / "tnews").exists()


def classifier_and_batch(seed: int = 0) -> tuple:
    """A tiny classifier without dropout (random weights, vocab of 40) and a batch of 3."""
    from wobert.finetune import PretrainedModel, build_classifier

    set_seed(seed)
    config = dict(TINY, vocab_size=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    classifier = build_classifier(PretrainedModel(Path("(random)"), config, None, None, "char"), 3,
                                  dropout=0.0)
    tokens = np.array([[2, 7, 8, 9, 3], [2, 10, 11, 3, 0], [2, 7, 3, 0, 0]], np.int32)
    return classifier, tokens, np.zeros_like(tokens), np.array([0, 1, 2], np.int32)


def sparse_adam_tables(sparse: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The token and segment tables of a tiny classifier before and after three train steps
    (rows 0, 10 and 11 left out by the second step), then settled."""
    from wobert.finetune import make_train_step
    from wobert.optimization import AdamW

    classifier, tokens, segments, labels = classifier_and_batch()
    before = classifier.get_layer("Embedding-Token").embeddings.numpy()
    optimizer = AdamW(classifier.trainable_variables, 1e-2, sparse=sparse)
    step = make_train_step(classifier, optimizer, clipnorm=1.0)
    for n in (3, 1, 3):
        step(tokens[:n], segments[:n], labels[:n])
    tables = [classifier.get_layer(name).embeddings.numpy() for name in ("Embedding-Token", "Embedding-Segment")]
    optimizer.settle()
    return before, tables + [classifier.get_layer("Embedding-Token").embeddings.numpy()]


@pytest.mark.parametrize("sparse", ["lazy", "catch-up"])
def test_sparse_adam_moves_only_the_rows_a_batch_uses_and_catch_up_gives_dense_adamws(sparse):
    before, (table, segments, settled) = sparse_adam_tables(sparse)
    _, (dense, dense_segments, _) = sparse_adam_tables("dense")
    used = [0, 2, 3, 7, 8, 9, 10, 11]
    unused = [i for i in range(40) if i not in used]
    np.testing.assert_array_equal(table[unused], before[unused])
    assert not np.array_equal(dense[unused], before[unused])  # dense AdamW decays them
    gap = np.abs(table[used] - dense[used]).max()
    if sparse == "lazy":
        assert gap > 1e-4  # dense AdamW moved rows 0, 10 and 11 on the step that left them out
        np.testing.assert_array_equal(settled, table)
    else:
        assert gap < 1e-6
        np.testing.assert_allclose(segments, dense_segments, rtol=0, atol=1e-6)  # 2 rows: dense steps
        np.testing.assert_allclose(settled, dense, rtol=0, atol=1e-6)


def test_xla_steps_give_the_plain_steps_results_on_padded_batches():
    from wobert.finetune import make_predict_fn, make_train_step
    from wobert.optimization import AdamW

    results = []
    for jit in (False, True):
        classifier, tokens, segments, labels = classifier_and_batch()
        step = make_train_step(classifier, AdamW(classifier.trainable_variables, 1e-2), 1.0, jit)
        losses = [float(step(tokens, segments, labels)) for _ in range(3)]
        results.append((losses, make_predict_fn(classifier, jit)(tokens, segments).numpy()))
    (plain_losses, plain_probs), (xla_losses, xla_probs) = results
    np.testing.assert_allclose(xla_losses, plain_losses, rtol=1e-4)
    np.testing.assert_allclose(xla_probs, plain_probs, atol=1e-5)
    assert plain_losses[-1] < plain_losses[0]
