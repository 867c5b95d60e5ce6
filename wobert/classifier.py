"""A finetuned classifier as a model directory, which ``wobert export`` turns into a Hugging Face
BertForSequenceClassification.

``wobert finetune --save-model`` writes ``OUT/model/`` in the Google BERT layout
(``bert_config.json``, ``vocab.txt``, ``tokenizer_config.json``, ``bert_model.ckpt.*``) whose
checkpoint also holds the classification layer under the names of Google's run_classifier,
``output_weights`` ``[labels, hidden]`` and ``output_bias``, and ``classifier.json``: the labels
in id order, the pooling and the task. Finetuning can start from it again (the classification
layer is then left out).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wobert.backend import build_bert, keras, read_checkpoint, save_bert_checkpoint
from wobert.errors import UserError
from wobert.files import replace_dir
from wobert.finetune import PretrainedModel, build_classifier, load_pretrained
from wobert.jsonfile import read_json, write_json
from wobert.layouts import CLASSIFIER, GOOGLE_CONFIG_KEYS

CLASSIFIER_FILE = "classifier.json"


@dataclass(frozen=True)
class ClassifierInfo:
    """What a classifier directory adds to a BERT: its labels (id order), pooling and task."""

    labels: tuple[str, ...]
    pooling: str = "pool"  # "pool": BERT's pooler on [CLS]; "cls": the raw [CLS] vector
    task: str = "custom"


def read_classifier_info(model_dir: str | os.PathLike) -> ClassifierInfo | None:
    """The directory's ``classifier.json``; None for a model that is not a classifier."""
    values = read_json(Path(model_dir) / CLASSIFIER_FILE, default=None)
    if values is None:
        return None
    try:
        return ClassifierInfo(**{**values, "labels": tuple(values["labels"])})
    except (KeyError, TypeError) as err:
        raise UserError(f"{Path(model_dir) / CLASSIFIER_FILE}: not a classifier description ({err})") from None


def save_classifier(classifier: keras.Model, model: PretrainedModel, info: ClassifierInfo,
                    out_dir: str | os.PathLike) -> Path:
    """Write the weights of ``classifier`` (built by ``build_classifier`` on ``model``) as a
    classifier directory, replacing ``out_dir`` atomically."""
    bert = build_bert(model.config, with_pool=info.pooling == "pool")
    for layer in bert.model.layers:
        if layer.weights:
            layer.set_weights(classifier.get_layer(layer.name).get_weights())
    kernel, bias = classifier.get_layer("Classifier").get_weights()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.tokenizer.save(tmp)
    write_json(tmp / "bert_config.json", {k: model.config[k] for k in GOOGLE_CONFIG_KEYS if k in model.config})
    save_bert_checkpoint(bert, tmp / "bert_model.ckpt", dict(zip(CLASSIFIER, (kernel.T, bias))))
    write_json(tmp / CLASSIFIER_FILE, {**asdict(info), "labels": list(info.labels)})
    replace_dir(tmp, out_dir)
    return out_dir


def load_classifier(model_dir: str | os.PathLike) -> tuple[keras.Model, PretrainedModel, ClassifierInfo]:
    """The Keras classifier a classifier directory holds, with its model and description."""
    info = read_classifier_info(model_dir)
    if info is None:
        raise FileNotFoundError(f"{model_dir} is not a classifier directory: no {CLASSIFIER_FILE}")
    model = load_pretrained(model_dir)
    classifier = build_classifier(model, len(info.labels), info.pooling, dropout=0.0)
    values: dict[str, Any] = read_checkpoint(model.checkpoint)
    weights, bias = (values[name] for name in CLASSIFIER)
    classifier.get_layer("Classifier").set_weights([weights.T, bias])
    return classifier, model, info
