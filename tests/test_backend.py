"""bert4keras on TF 2.21 through wobert.backend: build, save, load."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wobert.backend import (
    CheckpointMismatch,
    build_bert,
    build_transformer_model,
    keras,
    save_bert_checkpoint,
    set_seed,
    tf,
)

CONFIG = dict(
    vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, hidden_act="gelu", max_position_embeddings=32, type_vocab_size=2,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)


def batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.random.RandomState(seed).randint(5, CONFIG["vocab_size"], (n, 12))
    return tokens, np.zeros_like(tokens)


def mlm_model(seed: int = 0) -> keras.Model:
    set_seed(seed)
    return build_bert(CONFIG, with_mlm=True).model


def test_tiny_bert_builds_with_mlm_head():
    model = mlm_model()
    probs = model.predict(list(batch(3)), verbose=0)
    assert probs.shape == (3, 12, CONFIG["vocab_size"])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-4)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("bert")
    set_seed(3)
    transformer = build_bert(CONFIG, with_mlm=True, with_pool=True)
    save_bert_checkpoint(transformer, out / "bert_model.ckpt")
    (out / "bert_config.json").write_text(json.dumps(CONFIG))
    return transformer, out


def test_checkpoint_round_trip_through_bert4keras(saved):
    transformer, out = saved
    assert tf.train.latest_checkpoint(str(out)).endswith("bert_model.ckpt")
    names = dict(tf.train.list_variables(str(out / "bert_model.ckpt")))
    assert names["bert/embeddings/word_embeddings"] == [40, 32]
    assert "bert/pooler/dense/kernel" in names and "cls/predictions/output_bias" in names
    loaded = build_transformer_model(
        str(out / "bert_config.json"), str(out / "bert_model.ckpt"), with_mlm=True, with_pool=True
    )
    inputs = list(batch(2))
    for ours, theirs in zip(transformer.model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0)):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"vocab_size": 41}, "checkpoint has 40 tokens, the model's vocab has 41"),
        ({"hidden_size": 64, "intermediate_size": 64},
         "bert/embeddings/LayerNorm/beta: checkpoint shape (32,), model (64,)"),
        ({"num_hidden_layers": 3}, "bert/encoder/layer_2/attention/self/query/kernel is missing"),
    ],
)
def test_checkpoint_that_does_not_fit_fails_clearly(saved, change, message):
    _, out = saved
    with pytest.raises(CheckpointMismatch, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_bert(dict(CONFIG, **change), out / "bert_model.ckpt", with_mlm=True)


def test_missing_checkpoint_fails_clearly(tmp_path):
    with pytest.raises(CheckpointMismatch, match="cannot read checkpoint"):
        build_bert(CONFIG, tmp_path / "nothing.ckpt")


def test_missing_bert4keras_names_the_install_command():
    code = "import sys; sys.modules['bert4keras'] = None; import wobert.backend"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install --no-deps bert4keras==0.11.5" in result.stderr


def test_initial_kernels_differ_within_a_layer():
    weights = {w.name: w.numpy() for w in mlm_model().weights}
    prefix = "Transformer-0-MultiHeadSelfAttention/"
    query, key = weights[prefix + "dense/kernel:0"], weights[prefix + "dense_1/kernel:0"]
    assert not np.array_equal(query, key)
    assert 0.01 < query.std() < 0.03


@pytest.mark.parametrize("setting, bfc", [(None, True), ("false", False)])
def test_cpu_memory_comes_from_the_bfc_allocator_unless_the_environment_says_otherwise(setting, bfc):
    code = ("from wobert.backend import tf\n"
            "tf.matmul(tf.ones((64, 64)), tf.ones((64, 64)))\n"
            "try:\n    tf.config.experimental.get_memory_info('CPU:0')\n"
            "except ValueError:\n    print('malloc')\nelse:\n    print('bfc')\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    # oneDNN (on by default on AVX-512 cores) brings its own pooling allocator whatever the setting
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    if setting is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = setting
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bfc" if bfc else "malloc"]
