"""The ``tf.data`` reader of a records directory: batches of masked sequences for pretraining.

Static records are parsed, padded and weighted; dynamic ones are masked here, anew each
epoch, with masks that derive from the seed and the batch's position in the stream.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wobert.errors import UserError
from wobert.manifest import Manifest, check_records, read_manifest

if TYPE_CHECKING:  # TensorFlow is imported (through wobert.backend) only when a dataset is made
    import tensorflow as tf

Features = dict[str, "tf.Tensor"]


def _parse_batch(manifest: Manifest) -> Callable[[tf.Tensor], Features]:
    """Serialized records [B] -> padded int32 features and ``length`` [B], in one op."""
    from wobert.backend import tf

    names, P, pad = manifest.stored_features(), manifest.max_predictions, manifest.special_ids["pad"]
    features = {name: tf.io.RaggedFeature(tf.int64) for name in ["token_ids"] + names}

    def parse(records: tf.Tensor) -> Features:
        x = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_example(records, features).items()}
        out = {"token_ids": x["token_ids"].to_tensor(pad), "length": x["token_ids"].row_lengths()}
        for name in names:
            out[name] = x[name].to_tensor(0, shape=[None, None if name == "word_starts" else P])
        return out

    return parse


def _parse_one(manifest: Manifest) -> Callable[[tf.Tensor], Features]:
    """A serialized record -> its int32 features and ``length`` (for bucketing)."""
    from wobert.backend import tf

    features = {name: tf.io.RaggedFeature(tf.int64) for name in ["token_ids"] + manifest.stored_features()}

    def parse(record: tf.Tensor) -> Features:
        x = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_single_example(record, features).items()}
        return {**x, "length": tf.shape(x["token_ids"])[0]}

    return parse


def _features(manifest: Manifest, seed: int, pipelines: int, pipeline: int,
              parse: Callable[[tf.Tensor], Features] | None = None) -> Callable[[tf.Tensor, Features], Features]:
    """``(batch index, padded batch)`` -> the model's features (``parse`` first, if given).
    Dynamic masks are seeded by ``seed`` and the batch's index across all ``pipelines``."""
    from wobert.backend import tf
    from wobert.masking import mask_batch_tf

    spec = manifest.mask_spec()

    def features(index: tf.Tensor, x: Features | tf.Tensor) -> Features:
        x = parse(x) if parse else x
        if manifest.dynamic:
            seeds = tf.stack([tf.constant(seed, tf.int64), index * pipelines + pipeline])
            out = mask_batch_tf(x["token_ids"], x.get("word_starts"), x["length"], spec, seeds)
        else:
            out = {k: x[k] for k in ("token_ids", "masked_positions", "masked_ids")}
            out["masked_weights"] = tf.cast(x["masked_positions"] > 0, tf.float32)  # position 0 is [CLS]
        return {**out, "segment_ids": tf.zeros_like(out["token_ids"])}

    return features


def _record_stream(files: list[str], shuffle: bool, seed: int, repeat: bool, pipelines: int,
                   pipeline: int, shuffle_buffer: int) -> tf.data.Dataset:
    """The serialized records of this input pipeline: its shards (or, with fewer shards than
    pipelines, its share of the records), interleaved and shuffled when ``shuffle``."""
    from wobert.backend import tf

    ds = tf.data.Dataset.from_tensor_slices(files)
    by_file = len(files) >= pipelines
    if by_file:
        ds = ds.shard(pipelines, pipeline)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 16) if shuffle else 1,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not by_file:
        ds = ds.shard(pipelines, pipeline)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    return ds


def _bucket_batches(ds: tf.data.Dataset, manifest: Manifest, batch_size: int, buckets: Sequence[int],
                    drop_remainder: bool) -> tf.data.Dataset:
    """Parsed records batched by length, each batch padded to its bucket (``maxlen`` is the last)."""
    from wobert.backend import tf

    P = manifest.max_predictions
    shapes = {"token_ids": [None], "length": [],
              **{k: [None if k == "word_starts" else P] for k in manifest.stored_features()}}
    pads = {k: tf.constant(manifest.special_ids["pad"] if k == "token_ids" else 0, tf.int32) for k in shapes}
    bounds = sorted({int(b) for b in buckets if 0 < int(b) < manifest.maxlen} | {manifest.maxlen})
    ds = ds.map(_parse_one(manifest), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.bucket_by_sequence_length(
        lambda x: x["length"], [b + 1 for b in bounds], [batch_size] * (len(bounds) + 1),
        padded_shapes=shapes, padding_values=pads, pad_to_bucket_boundary=True, drop_remainder=drop_remainder)


def make_dataset(
    data_dir: str | Path,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    buckets: Sequence[int] | None = None,
    skip_batches: int = 0,
    shuffle_buffer: int = 10_000,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of masked sequences from a records directory, as a ``tf.data.Dataset`` of dicts:

    ``token_ids``, ``segment_ids`` (int32 [B, L]), ``masked_positions``, ``masked_ids``
    (int32 [B, P]) and ``masked_weights`` (float32 [B, P], 0.0 on padding), where L is the
    batch's longest sequence (or, with ``buckets`` such as ``[64, 128, 512]``, the bucket that
    fits it; ``maxlen`` is added as the last bucket) and P the manifest's ``max_predictions``.
    Without buckets, whole batches are parsed at once (several times faster).

    - ``batch_size`` is what each batch of *this* pipeline holds: under ``tf.distribute``,
      call it from ``strategy.distribute_datasets_from_function(fn)`` with
      ``input_context.get_per_replica_batch_size(global_batch)`` and pass ``input_context``;
      pipelines then read disjoint shards (or records, if there are fewer shards).
    - Without ``shuffle``, records come in the order of the shards (the corpus order).
      With ``shuffle``, shard order and a ``shuffle_buffer`` of records are shuffled with
      ``seed`` (anew each epoch); dynamic masks derive from ``seed`` and the batch's position
      in the stream (different every epoch). The batches are a pure function of ``seed``: to
      resume training exactly, count the batches this pipeline yielded and pass them as
      ``skip_batches`` with the same ``seed`` (without buckets they are skipped before
      parsing and masking, so this is cheap).
    - The shards are first checked against the manifest (missing, or of another size: a
      ``UserError`` naming them); TensorFlow checks each record's CRC as it reads it (a
      damaged one raises ``DataLossError``; ``check_records(..., full=True)`` names the shard).
    """
    from wobert.backend import tf

    manifest = read_manifest(data_dir)
    files = [str(Path(data_dir) / s.file) for s in manifest.shards]
    if not manifest.complete or not files:
        raise UserError(f"{data_dir}: the records are incomplete; re-run `wobert data build` to finish them")
    check_records(data_dir, manifest)
    pipelines, pipeline = ((input_context.num_input_pipelines, input_context.input_pipeline_id)
                           if input_context is not None else (1, 0))
    ds = _record_stream(files, shuffle, seed, repeat, pipelines, pipeline, shuffle_buffer)
    if buckets:
        ds, parse = _bucket_batches(ds, manifest, batch_size, buckets, drop_remainder), None
    else:
        ds, parse = ds.batch(batch_size, drop_remainder=drop_remainder), _parse_batch(manifest)
    features = _features(manifest, seed, pipelines, pipeline, parse)
    ds = ds.enumerate().skip(skip_batches).map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
