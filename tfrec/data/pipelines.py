"""tf.data pipelines that turn ratings (+ side tables) into batches of feature dicts.

Two builders yield identical elements for the same arguments:

* :func:`generator_dataset` -- ``tf.data.Dataset.from_generator`` with an explicit
  ``output_signature`` (the workshop seed's style; streams rows from Python).
* :func:`tensor_dataset` -- ``tf.data.Dataset.from_tensor_slices`` over in-memory columns.

Both then cache (optional), shuffle (seeded, reshuffled every epoch), batch and prefetch. Element
names, dtypes and shapes are the feature contract of ``docs/architecture.md``::

    user_id, item_id: tf.string []      rating: tf.float32 []     timestamp: tf.int64 []
    gender, occupation, zip: tf.string []   age: tf.int64 []        (when users are given)
    genres: tf.string [MAX_GENRES]          year: tf.int64 []       (when items are given)
    label: tf.float32 []                                          (when the frame has one)
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.data import features as F
from tfrec.errors import ConfigError, DataError

PIPELINES = ("tensor", "generator")
_GENERATOR_CHUNK = 4096
_STRING = {F.USER_ID, F.ITEM_ID, F.GENDER, F.OCCUPATION, F.ZIP, F.GENRES}
_INT = {F.TIMESTAMP, F.AGE, F.YEAR}
_FLOAT = {F.RATING, "label"}


def _spec(name: str):
    import tensorflow as tf

    if name == F.GENRES:
        return tf.TensorSpec(shape=(F.MAX_GENRES,), dtype=tf.string, name=name)
    if name in _STRING:
        return tf.TensorSpec(shape=(), dtype=tf.string, name=name)
    if name in _INT:
        return tf.TensorSpec(shape=(), dtype=tf.int64, name=name)
    if name in _FLOAT:
        return tf.TensorSpec(shape=(), dtype=tf.float32, name=name)
    raise ConfigError(f"unknown feature {name!r}; expected one of {F.FEATURE_NAMES + ('label',)}")


def output_signature(has_users: bool = True, has_items: bool = True, *, has_rating: bool = True,
                     has_label: bool = False, features: Optional[Sequence[str]] = None) -> dict:
    """The ``tf.TensorSpec`` of one example, keyed by feature name."""
    names = [F.USER_ID, F.ITEM_ID]
    if has_rating:
        names += [F.RATING, F.TIMESTAMP]
    if has_users:
        names += list(F.USER_FEATURES)
    if has_items:
        names += list(F.ITEM_FEATURES)
    if has_label:
        names.append("label")
    if features is not None:
        names = [n for n in names if n in set(features)]
    return {n: _spec(n) for n in names}


def feature_columns(ratings: pd.DataFrame, items: Optional[pd.DataFrame] = None,
                    users: Optional[pd.DataFrame] = None, features: Optional[Sequence[str]] = None) -> dict:
    """Numpy columns (one per feature) ready for ``from_tensor_slices``."""
    for col in (F.USER_ID, F.ITEM_ID):
        if col not in ratings.columns:
            raise DataError(f"ratings frame is missing column {col!r}; has {list(ratings.columns)}")
    has_rating = F.RATING in ratings.columns and F.TIMESTAMP in ratings.columns
    frame = pd.DataFrame({F.USER_ID: ratings[F.USER_ID].to_numpy(), F.ITEM_ID: ratings[F.ITEM_ID].to_numpy()})
    frame[F.RATING] = ratings[F.RATING].to_numpy() if has_rating else 0.0
    frame[F.TIMESTAMP] = ratings[F.TIMESTAMP].to_numpy() if has_rating else 0
    joined = F.feature_frame(frame, items=items, users=users)
    if not has_rating:
        joined = joined.drop(columns=[F.RATING, F.TIMESTAMP])
    if "label" in ratings.columns:
        joined["label"] = ratings["label"].to_numpy(dtype=np.float32)
    cols = {}
    for name in joined.columns:
        if features is not None and name not in features and name != "label":
            continue
        values = joined[name]
        if name == F.GENRES:
            cols[name] = np.array(values.tolist(), dtype=object).reshape(len(joined), F.MAX_GENRES).astype(bytes)
        elif name in _STRING:
            cols[name] = values.astype(str).to_numpy(dtype=object).astype(bytes)
        elif name in _INT:
            cols[name] = values.to_numpy(dtype=np.int64)
        else:
            cols[name] = values.to_numpy(dtype=np.float32)
    return cols


def _finish(ds, *, n: int, batch_size: int, shuffle: bool, seed: int, cache: bool, drop_remainder: bool,
            label_key: Optional[str], repeat: bool):
    import tensorflow as tf

    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(buffer_size=max(n, 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if label_key is not None:
        ds = ds.map(lambda d: ({k: v for k, v in d.items() if k != label_key}, d[label_key]),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _check_args(batch_size, label_key, cols) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if label_key is not None and label_key not in cols:
        raise ConfigError(f"label_key {label_key!r} is not a column of the pipeline ({sorted(cols)})")


def tensor_dataset(ratings: pd.DataFrame, *, items=None, users=None, batch_size: int = 1024, shuffle: bool = True,
                   seed: int = 0, cache: bool = True, drop_remainder: bool = False, label_key: Optional[str] = None,
                   features: Optional[Sequence[str]] = None, repeat: bool = False):
    """Batches of feature dicts via ``from_tensor_slices`` (see the module docstring)."""
    import tensorflow as tf

    cols = feature_columns(ratings, items=items, users=users, features=features)
    _check_args(batch_size, label_key, cols)
    ds = tf.data.Dataset.from_tensor_slices(cols)
    return _finish(ds, n=len(ratings), batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                   drop_remainder=drop_remainder, label_key=label_key, repeat=repeat)


def generator_dataset(ratings: pd.DataFrame, *, items=None, users=None, batch_size: int = 1024,
                      shuffle: bool = True, seed: int = 0, cache: bool = True, drop_remainder: bool = False,
                      label_key: Optional[str] = None, features: Optional[Sequence[str]] = None,
                      repeat: bool = False):
    """Batches of feature dicts via ``from_generator`` with an explicit ``output_signature``."""
    import tensorflow as tf

    cols = feature_columns(ratings, items=items, users=users, features=features)
    _check_args(batch_size, label_key, cols)
    # The generator yields row chunks (spec shape [None, ...]) that are unbatched right away:
    # the elements are exactly the per-row ones, without paying from_generator's per-row cost.
    signature = {name: tf.TensorSpec(shape=(None,) + tuple(_spec(name).shape), dtype=_spec(name).dtype, name=name)
                 for name in cols}
    names = list(cols)
    n = len(ratings)

    def rows():
        for start in range(0, n, _GENERATOR_CHUNK):
            yield {k: cols[k][start:start + _GENERATOR_CHUNK] for k in names}

    ds = tf.data.Dataset.from_generator(rows, output_signature=signature).unbatch()
    return _finish(ds, n=n, batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                   drop_remainder=drop_remainder, label_key=label_key, repeat=repeat)


def make_dataset(ratings: pd.DataFrame, *, items=None, users=None, pipeline: str = "tensor", batch_size: int = 1024,
                 shuffle: bool = True, seed: int = 0, cache: bool = True, drop_remainder: bool = False,
                 label_key: Optional[str] = None, features: Optional[Sequence[str]] = None, repeat: bool = False):
    """A batched ``tf.data.Dataset`` of feature dicts from ``pipeline`` ("tensor" or "generator").

    Args:
      ratings: rows to stream (user_id, item_id, and rating/timestamp or label).
      items, users: side tables; their features are joined in when given.
      batch_size: examples per batch.
      shuffle: shuffle with ``seed`` (a new order every epoch, the same sequence for a seed).
      cache: cache examples after the first pass (makes the generator pipeline as fast as the
        tensor one from the second epoch on).
      label_key: yield ``(features, features.pop(label_key))`` instead of a dict.
      features: restrict to these feature names.
      repeat: repeat indefinitely (use with ``steps_per_epoch``).

    Example:
      >>> ds = make_dataset(data.ratings, items=data.items, users=data.users, batch_size=256)  # doctest: +SKIP
      >>> batch = next(iter(ds)); batch["genres"].shape  # doctest: +SKIP
      TensorShape([256, 10])
    """
    if pipeline not in PIPELINES:
        raise ConfigError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}")
    build = tensor_dataset if pipeline == "tensor" else generator_dataset
    return build(ratings, items=items, users=users, batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                 drop_remainder=drop_remainder, label_key=label_key, features=features, repeat=repeat)
