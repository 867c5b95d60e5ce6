"""The MLM model: gathered head, char-to-word initialisation, BERT-format export."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_pretrain import write_vocab

from wobert.backend import K, build_transformer_model, dropout_seeds, keras, set_seed, tf
from wobert.model import (
    attend,
    attention_probs,
    build_mlm_model,
    export_bert,
    init_config,
    init_from_bert,
    mlm_loss,
    read_vocabulary,
    tied_logits,
    xla_gelu,
)

MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             hidden_act="gelu", max_position_embeddings=32, type_vocab_size=2,
             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def inputs(vocab_size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    tokens = rng.randint(5, vocab_size, (3, 10))
    tokens[0, 7:] = 0
    positions = np.array([[1, 2, 0], [3, 4, 5], [9, 0, 0]])
    return [tokens, np.zeros_like(tokens), positions]


@pytest.mark.parametrize("layers, dropout", [(2, 0.1), (1, 0.0)])  # no dropout: no such layers
def test_gathered_head_equals_full_head_at_the_masked_positions(layers, dropout):
    set_seed(0)
    mlm = build_mlm_model(dict(MODEL, vocab_size=50, num_hidden_layers=layers,
                               hidden_dropout_prob=dropout))
    tokens, segments, positions = inputs(50)
    logits = mlm.model.predict([tokens, segments, positions], verbose=0)
    _, probs = mlm.transformer.model.predict([tokens, segments], verbose=0)
    assert logits.shape == (3, 3, 50)
    full = np.take_along_axis(probs, positions[..., None], 1)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), full, atol=1e-6)
    pooler = {w.name for w in mlm.transformer.model.trainable_weights} - {
        w.name for w in mlm.model.trainable_weights}
    assert pooler == {"Pooler-Dense/kernel:0", "Pooler-Dense/bias:0"}


def test_pretraining_bert_equals_bert4keras_bert():
    """Its XLA attention and GELU change no output of bert4keras's network (no dropout)."""
    set_seed(0)
    config = dict(MODEL, vocab_size=50, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ours = build_mlm_model(config).transformer.model
    theirs = build_transformer_model(with_mlm=True, with_pool=True, **config)
    theirs.set_weights(ours.get_weights())
    tokens, segments, _ = inputs(50)
    for got, want in zip(ours.predict([tokens, segments], verbose=0),
                         theirs.predict([tokens, segments], verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("hidden, attention", [(0.5, 0.0), (0.0, 0.5)])
def test_training_dropout_noise_equals_bert4keras_bert(hidden, attention):
    """With dropout on, the gathered model's MLM outputs scatter about the dropout-free ones as
    much as bert4keras's whole network's do (its dropout masks are drawn in other shapes), with
    Keras's stateful masks and with the pretraining step's stateless ones alike."""
    set_seed(0)
    config = dict(MODEL, vocab_size=50, num_hidden_layers=1, hidden_dropout_prob=hidden,
                  attention_probs_dropout_prob=attention)
    mlm = build_mlm_model(config)
    theirs = build_transformer_model(with_mlm=True, with_pool=True, **config)
    # kernels ~10x BERT's initial scale, so that each residual branch's dropout counts
    weights = [w * 10 if w.ndim == 2 else w for w in mlm.transformer.model.get_weights()]
    for model in (mlm.transformer.model, theirs):
        model.set_weights(weights)
    tokens, segments, positions = (tf.constant(a) for a in inputs(50))

    @tf.function  # traced once per mode; each call draws new dropout masks
    def full(training):
        probs = theirs([tokens, segments], training=training)[1]
        return tf.math.log(tf.gather(probs, positions, batch_dims=1))

    @tf.function
    def gathered(training):
        return tf.nn.log_softmax(mlm.model([tokens, segments, positions], training=training))

    counter = tf.Variable([7, 0], dtype=tf.int64)

    @tf.function
    def stateless(training):
        with dropout_seeds(counter.assign_add([0, 1])):
            return gathered.python_function(training)

    still = full(False)
    np.testing.assert_allclose(gathered(False), still, atol=1e-5)
    np.testing.assert_allclose(stateless(False), still, atol=1e-5)
    power = [np.mean([float(tf.reduce_mean(tf.square(f(True) - still))) for _ in range(200)])
             for f in (full, gathered, stateless)]
    assert power[1] == pytest.approx(power[0], rel=0.05)
    assert power[2] == pytest.approx(power[0], rel=0.05)


KEYS = tf.constant([[True] * 7, [True] * 4 + [False] * 3])  # the second sequence is padded


def value_and_grad(fn, args, dy):
    with tf.GradientTape() as tape:
        tape.watch(args)
        y = fn(*args)
    return [y] + tape.gradient(y, args, output_gradients=dy)


@pytest.mark.parametrize("fused, reference, shapes", [
    (xla_gelu, keras.activations.get("gelu"), [(64, 48)]),  # bert4keras's erf GELU
    (tied_logits, lambda x, kernel: tf.matmul(x, kernel, transpose_b=True), [(20, 16), (50, 16)]),
    (lambda q, k: attention_probs(q, k, KEYS),  # bert4keras's masked softmax of q k^T / sqrt(d)
     lambda q, k: K.softmax(tf.where(KEYS[:, None, None, :],
                                     tf.einsum("bjhd,bkhd->bhjk", q, k) / 2.0, -np.inf)),
     [(2, 5, 3, 4), (2, 7, 3, 4)]),
    (attend, lambda p, v: tf.einsum("bhjk,bkhd->bjhd", p, v), [(2, 3, 5, 7), (2, 7, 3, 4)]),
])
def test_xla_kernels_equal_tf_ops_with_their_gradients(fused, reference, shapes):
    rng = np.random.RandomState(0)
    args = [tf.constant(rng.normal(0, 2, s), tf.float32) for s in shapes]
    dy = tf.constant(rng.normal(size=reference(*args).shape), tf.float32)
    for got, want in zip(value_and_grad(fused, args, dy), value_and_grad(reference, args, dy)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5, rtol=1e-6)


def test_mlm_loss_sums_weighted_positions():
    logits = tf.math.log(tf.constant([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3],
                                       [0.2, 0.2, 0.6]]]))
    loss, correct, weight = mlm_loss(logits, tf.constant([[0, 1, 2, 1]]),
                                     tf.constant([[1.0, 1.0, 0.0, 1.0]]))
    assert float(loss) == pytest.approx(-np.log(0.5) - np.log(0.8) - np.log(0.2), rel=1e-5)
    assert (float(correct), float(weight)) == (2.0, 3.0)


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    """A tiny 'char' BERT in the Google layout with a 30-token vocab."""
    out = tmp_path_factory.mktemp("char")
    set_seed(5)
    mlm = build_mlm_model(dict(MODEL, vocab_size=30))
    write_vocab(out, 30)
    return read_vocabulary(out), export_bert(mlm, out, read_vocabulary(out))


def word_vocab(directory: Path, base, keep: list[int], compound: list[list[int]]):
    """A word vocabulary: kept base tokens, then one new token per compound."""
    directory.mkdir(parents=True, exist_ok=True)
    tokens = [base.tokens[i] for i in keep] + ["".join(f"w{i}" for i in c) for c in compound]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    (directory / "keep_tokens.json").write_text(json.dumps(keep))
    (directory / "compound_tokens.json").write_text(json.dumps(compound))
    (directory / "tokenizer_config.json").write_text(json.dumps({"kind": "word"}))
    return read_vocabulary(directory)


def test_word_model_from_char_model_averages_embeddings_and_output_bias(char_model, tmp_path):
    base, char_dir = char_model
    keep = [0, 1, 2, 3, 4] + list(range(10, 30))
    compound = [[5, 6], [7, 8, 9], [24]]  # ids in the kept (simplified) vocab
    vocab = word_vocab(tmp_path / "words", base, keep, compound)
    word = init_from_bert(char_dir, vocab)
    assert word.vocab_size == vocab.size == 28
    reader = tf.train.load_checkpoint(str(char_dir / "bert_model.ckpt"))
    for name, layer, index in (("bert/embeddings/word_embeddings", "Embedding-Token", 0),
                               ("cls/predictions/output_bias", "MLM-Bias", 0)):
        char = reader.get_tensor(name)[keep]
        ours = word.transformer.layers[layer].get_weights()[index]
        np.testing.assert_allclose(ours[:len(keep)], char, atol=1e-7)
        for row, ids in enumerate(compound, start=len(keep)):
            np.testing.assert_allclose(ours[row], char[ids].mean(0), atol=1e-7)


def test_word_vocab_built_on_another_base_is_refused(char_model, tmp_path):
    base, char_dir = char_model
    vocab = word_vocab(tmp_path / "words", base, [0, 1, 2, 3, 4, 6], [[5]])
    (vocab.directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                          "[MASK]", "t2", "x"]) + "\n")
    with pytest.raises(ValueError, match="vocab.txt line 6 is 't2' but keep_tokens points at 't1'"):
        init_from_bert(char_dir, read_vocabulary(vocab.directory))
    plain = read_vocabulary(write_vocab(tmp_path / "other", 31))
    with pytest.raises(ValueError, match="no keep_tokens.json/compound_tokens.json"):
        init_from_bert(char_dir, plain)


def test_export_loads_in_bert4keras_with_the_same_mlm_outputs(char_model, tmp_path):
    base, char_dir = char_model
    vocab = word_vocab(tmp_path / "words", base, list(range(30)), [[5, 6], [7]])
    mlm = init_from_bert(char_dir, vocab)
    out = export_bert(mlm, tmp_path / "export", vocab)
    assert sorted(p.name for p in out.iterdir()) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
        "checkpoint", "tokenizer_config.json", "vocab.txt"]
    assert json.loads((out / "bert_config.json").read_text())["vocab_size"] == 32
    assert "bert/pooler/dense/kernel" in dict(tf.train.list_variables(str(out / "bert_model.ckpt")))
    theirs = build_transformer_model(str(out / "bert_config.json"), str(out / "bert_model.ckpt"),
                                     with_mlm=True)
    tokens, segments, positions = inputs(32, seed=2)
    probs = theirs.predict([tokens, segments], verbose=0)
    ours = tf.nn.softmax(mlm.model.predict([tokens, segments, positions], verbose=0)).numpy()
    np.testing.assert_allclose(ours, np.take_along_axis(probs, positions[..., None], 1), atol=1e-6)


def test_initialising_model_keeps_its_architecture(char_model):
    _, char_dir = char_model
    config, checkpoint = init_config(char_dir, {"hidden_dropout_prob": 0.0, "hidden_size": 32})
    assert config["hidden_dropout_prob"] == 0.0 and checkpoint.endswith("bert_model.ckpt")
    with pytest.raises(ValueError, match="model.hidden_size=64 differs from .*bert_config.json"):
        init_config(char_dir, {"hidden_size": 64})


@pytest.mark.parametrize("keep_file", [True, False])
def test_word_model_from_a_char_model_trained_on_the_kept_tokens(char_model, tmp_path, keep_file):
    """The char model's vocab is the word vocab's base already (e.g. the simplified vocab):
    keep_tokens, which point into the original vocab, must not be applied again."""
    base, char_dir = char_model
    compound = [[5, 6], [29]]
    vocab = word_vocab(tmp_path / "words", base, list(range(30)), compound)
    if keep_file:
        (vocab.directory / "keep_tokens.json").write_text(json.dumps(list(range(100, 130))))
    else:
        (vocab.directory / "keep_tokens.json").unlink()
    word = init_from_bert(char_dir, read_vocabulary(vocab.directory))
    char = tf.train.load_checkpoint(str(char_dir / "bert_model.ckpt")).get_tensor(
        "bert/embeddings/word_embeddings")
    ours = word.transformer.layers["Embedding-Token"].get_weights()[0]
    np.testing.assert_allclose(ours[:30], char, atol=1e-7)
    np.testing.assert_allclose(ours[30], char[[5, 6]].mean(0), atol=1e-7)
    np.testing.assert_allclose(ours[31], char[29], atol=1e-7)
