"""BERT weights in the Google and the Hugging Face layout: names, round trips, bad checkpoints.
(No torch or transformers needed: safetensors are read with numpy.)"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from synthetic_pretrain import write_vocab

from wobert.backend import CheckpointMismatch, read_checkpoint, set_seed
from wobert.export import export_hf
from wobert.layouts import (
    CLASSIFIER,
    NSP_HEAD,
    POOLER,
    google_names,
    google_to_hf,
    hf_name,
    hf_to_google,
    read_hf_checkpoint,
    write_hf_tensors,
)
from wobert.model import build_mlm_model, export_bert, find_bert_checkpoint, read_vocabulary
from wobert.tokenizer import CharTokenizer, load_tokenizer

MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             hidden_act="gelu", max_position_embeddings=32, type_vocab_size=2,
             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)
HF_CONFIG = dict(MODEL, model_type="bert", vocab_size=40, architectures=["BertForPreTraining"])


def weight_shape(name: str, vocab: int = 40, hidden: int = 32, inner: int = 64) -> tuple[int, ...]:
    """The shape of a Google BERT weight (MODEL's sizes, 3 labels)."""
    embeddings = {"word_embeddings": vocab, "position_embeddings": 32, "token_type_embeddings": 2}
    if name.split("/")[-1] in embeddings:
        return embeddings[name.split("/")[-1]], hidden
    heads = {"cls/predictions/output_bias": (vocab,), NSP_HEAD[0]: (2, hidden), NSP_HEAD[1]: (2,),
             CLASSIFIER[0]: (3, hidden), CLASSIFIER[1]: (3,)}
    if name in heads:
        return heads[name]
    if "intermediate/dense" in name:
        return (hidden, inner) if name.endswith("kernel") else (inner,)
    if re.search(r"layer_\d+/output/dense/kernel", name):
        return inner, hidden
    return (hidden, hidden) if name.endswith("kernel") else (hidden,)


def random_google(layers: int = 2) -> dict[str, np.ndarray]:
    """Every weight of a BERT with MLM, NSP and classifier heads, random, in the Google layout."""
    rng = np.random.default_rng(0)
    return {name: rng.standard_normal(weight_shape(name)).astype(np.float32) for name in google_names(layers)}


def write_hf_dir(directory: Path, tensors: dict[str, np.ndarray], config: dict = HF_CONFIG) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_hf_tensors(directory / "model.safetensors", tensors)
    (directory / "config.json").write_text(json.dumps(config))
    write_vocab(directory, config["vocab_size"])
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    return directory


def test_names_map_to_transformers_and_back_bit_for_bit():
    assert hf_name("bert/encoder/layer_11/attention/output/LayerNorm/gamma") == \
        "bert.encoder.layer.11.attention.output.LayerNorm.weight"
    assert hf_name("bert/embeddings/word_embeddings") == "bert.embeddings.word_embeddings.weight"
    assert hf_name("cls/predictions/output_bias") == "cls.predictions.bias"
    assert hf_name("output_weights") == "classifier.weight"
    google = random_google()
    hf = google_to_hf(google)
    query = "bert/encoder/layer_0/attention/self/query/kernel"
    np.testing.assert_array_equal(hf[hf_name(query)], google[query].T)  # Linear weights are [out, in]
    np.testing.assert_array_equal(hf["cls.seq_relationship.weight"], google[NSP_HEAD[0]])  # [2, H] in both
    back = hf_to_google(hf, 2, "test")
    assert sorted(back) == sorted(google)
    for name, value in google.items():
        assert back[name].dtype == value.dtype and np.array_equal(back[name], value), name


def test_older_checkpoints_read_gamma_beta_without_prefix_and_tied_decoder():
    """hfl's RoBERTa-wwm-ext style: LayerNorm.gamma/beta, BertModel names without 'bert.', the
    decoder saved beside the embeddings, a position_ids buffer."""
    google = random_google()
    old = {}
    for name, value in google_to_hf(google).items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        old[name.removeprefix("bert.")] = value
    old["cls.predictions.decoder.weight"] = old["embeddings.word_embeddings.weight"]
    old["embeddings.position_ids"] = np.arange(32)[None]
    back = hf_to_google(old, 2, "old")
    assert all(np.array_equal(back[k], v) for k, v in google.items())


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update({"roberta.pooler.dense.weight": np.zeros(1)}),
     r"unknown weights, not those of a BERT with 2 layers .*: roberta\.pooler\.dense\.weight"),
    (lambda t: t.update({"bert.encoder.layer.2.output.dense.bias": np.zeros(1)}),
     r"unknown weights.*bert\.encoder\.layer\.2\.output\.dense\.bias"),
    (lambda t: t.pop("bert.encoder.layer.1.attention.self.key.weight"),
     r"missing weights of a BERT with 2 layers: bert\.encoder\.layer\.1\.attention\.self\.key\.weight"),
    (lambda t: t.update({"cls.predictions.decoder.weight": np.zeros((40, 32), np.float32)}),
     "the MLM decoder is not tied to the word embeddings"),
])
def test_bad_checkpoints_name_the_weights(change, message):
    tensors = google_to_hf(random_google())
    change(tensors)
    with pytest.raises(ValueError, match=message):
        hf_to_google(tensors, 2, "model.safetensors")
    with pytest.raises(ValueError, match=r"not BERT weights: bert/encoder/layer_0/attention/extra"):
        google_to_hf({**random_google(), "bert/encoder/layer_0/attention/extra": np.zeros(1),
                      "bert/embeddings/word_embeddings/adam_m": np.zeros(1)})


def test_a_roberta_config_or_a_directory_of_neither_layout_is_refused(tmp_path):
    tensors = google_to_hf(random_google())
    roberta = write_hf_dir(tmp_path / "roberta", tensors, dict(HF_CONFIG, model_type="roberta"))
    with pytest.raises(ValueError, match="model_type 'roberta' is not BERT"):
        find_bert_checkpoint(roberta)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither bert_config.json .* nor config.json"):
        find_bert_checkpoint(tmp_path / "empty")
    (roberta / "model.safetensors").unlink()
    (roberta / "config.json").write_text(json.dumps(HF_CONFIG))
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        find_bert_checkpoint(roberta)


def test_hf_directory_loads_into_bert4keras_and_keeps_its_lower_case_setting(tmp_path, caplog):
    """A BertForMaskedLM save has no pooler: it starts random, with a warning naming it."""
    tensors = {k: v for k, v in google_to_hf(random_google()).items()
               if not k.startswith(("bert.pooler", "cls.seq", "classifier"))}
    hf_dir = write_hf_dir(tmp_path / "hf", tensors)
    with caplog.at_level(logging.WARNING, logger="wobert.layouts"):
        config, weights = find_bert_checkpoint(hf_dir)
    assert "has no pooler (bert.pooler.dense.weight, bert.pooler.dense.bias)" in caplog.text
    assert config["vocab_size"] == 40 and weights.source.endswith("model.safetensors")
    assert all(name in weights for name in POOLER)
    mlm = build_mlm_model(config, weights)
    np.testing.assert_array_equal(mlm.transformer.layers["Embedding-Token"].get_weights()[0],
                                  tensors["bert.embeddings.word_embeddings.weight"])
    tokenizer = load_tokenizer(hf_dir)
    assert isinstance(tokenizer, CharTokenizer) and not tokenizer.do_lower_case
    del weights["bert/encoder/layer_0/output/dense/bias"]
    with pytest.raises(CheckpointMismatch, match=r"model.safetensors' does not fit the model: "
                                                 r"bert/encoder/layer_0/output/dense/bias is missing"):
        build_mlm_model(config, weights)


def test_google_to_hf_to_google_is_bit_identical(tmp_path):
    set_seed(3)
    mlm = build_mlm_model(dict(MODEL, vocab_size=30))
    vocab = read_vocabulary(write_vocab(tmp_path / "vocab", 30))
    google = export_bert(mlm, tmp_path / "google", vocab)
    hf = export_hf(google, tmp_path / "hf")
    assert json.loads((hf / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    config, weights = read_hf_checkpoint(hf)
    again = export_bert(build_mlm_model(config, weights), tmp_path / "google2", vocab)
    first, second = (read_checkpoint(d / "bert_model.ckpt") for d in (google, again))
    assert sorted(first) == sorted(second) and len(first) == 5 + 2 * 16 + 2 + 5
    for name, value in first.items():
        assert np.array_equal(second[name], value), name
    assert json.loads((again / "bert_config.json").read_text()) == json.loads(
        (google / "bert_config.json").read_text())
