"""The hyper-parameters of a finetuning run, apart from :mod:`wobert.finetune` so that the
command line shows their defaults without importing TensorFlow."""
from __future__ import annotations

from dataclasses import dataclass

from wobert.checks import check_field_types
from wobert.errors import UserError

# how sparse gradients (the embedding tables') update: wobert.optimization.AdamW's ``sparse``
SPARSE_MODES = ("catch-up", "lazy", "dense")


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters and budgets of one finetuning run."""

    lr: float = 2e-5
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128  # dev/test batches (inference speed is measured on dev)
    maxlen: int = 128
    seed: int = 42
    pooling: str = "pool"  # "pool": BERT's tanh pooler on [CLS]; "cls": the raw [CLS] vector
    dropout: float = 0.1
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of the steps with a linear warm-up
    clipnorm: float = 1.0
    patience: int = 2  # evaluations without a better dev accuracy before stopping
    eval_every: int = 0  # steps between dev evaluations; 0: once per epoch
    max_train: int | None = None  # use only the first N training examples (None: all)
    max_dev: int | None = None  # use only the first N dev examples (None: all)
    predict_test: bool = True
    save_model: bool = False  # also write the best model to OUT/model/ (see wobert.classifier)
    sparse_adam: str = "catch-up"  # how the embedding rows update: "catch-up", "lazy" or "dense"
    jit_compile: bool = False  # forward and backward passes compiled by XLA (per batch shape)

    def __post_init__(self) -> None:
        check_field_types(self, "finetune config")
        if min(self.epochs, self.batch_size, self.eval_batch_size, self.patience) < 1 or self.maxlen < 2:
            raise UserError("epochs, batch sizes and patience must be >= 1, maxlen >= 2")
        if self.lr < 0 or not 0 <= self.dropout < 1 or not 0 <= self.warmup <= 1 or self.eval_every < 0:
            raise UserError("lr and eval_every must be >= 0, dropout in [0, 1), warmup in [0, 1]")
        if self.sparse_adam not in SPARSE_MODES:
            raise UserError(f"sparse_adam must be one of {', '.join(SPARSE_MODES)}, not {self.sparse_adam!r}")
        if self.pooling not in ("pool", "cls"):
            raise UserError(f"pooling must be 'pool' or 'cls', not {self.pooling!r}")
        for name in ("max_train", "max_dev"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise UserError(f"{name} must be >= 1 (or unset for all examples), not {limit}")
