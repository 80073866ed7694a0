"""tf.data pipelines that turn ratings (+ side tables) into batches of feature dicts.

Two builders yield identical elements for the same arguments:

* :func:`generator_dataset` -- ``tf.data.Dataset.from_generator`` with an explicit
  ``output_signature``: a Python generator yields one example (a feature dict) at a time, the
  workshop seed's style. Simple and streaming, but bound by Python: use ``cache=True`` so only
  the first epoch pays for it.
* :func:`tensor_dataset` -- ``tf.data.Dataset.from_tensor_slices`` over in-memory columns; the
  fast default.

Both then cache (optional), shuffle (seeded, reshuffled every epoch), repeat (optional), batch
and prefetch. Element names, dtypes and shapes are the feature contract of
``docs/architecture.md``::

    user_id, item_id: tf.string []      rating: tf.float32 []     timestamp: tf.int64 []
    gender, occupation, zip: tf.string []   age: tf.int64 []        (when users are given)
    genres: tf.string [MAX_GENRES]          year: tf.int64 []       (when items are given)
    label: tf.float32 []                                          (when the frame has one)

TensorFlow is imported inside the functions, so ``import tfrec.data`` stays light.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.data import features as F
from tfrec.errors import ConfigError, DataError

PIPELINES = ("tensor", "generator")
LABEL = "label"
_STRING = {F.USER_ID, F.ITEM_ID, F.GENDER, F.OCCUPATION, F.ZIP, F.GENRES}
_INT = {F.TIMESTAMP, F.AGE, F.YEAR}
_FLOAT = {F.RATING, LABEL}
_ORDER = F.FEATURE_NAMES + (LABEL,)


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
    raise ConfigError(f"unknown feature {name!r}; expected one of {', '.join(_ORDER)}")


def output_signature(has_users: bool = True, has_items: bool = True, *, has_rating: bool = True,
                     has_timestamp: Optional[bool] = None, has_label: bool = False,
                     features: Optional[Sequence[str]] = None) -> dict:
    """The ``tf.TensorSpec`` of one example, keyed by feature name (before batching).

    Args:
      has_users: include ``gender``, ``age``, ``occupation``, ``zip``.
      has_items: include ``genres`` and ``year``.
      has_rating: include ``rating``; ``has_timestamp`` (default: same as ``has_rating``)
        includes ``timestamp``.
      has_label: include ``label`` (frames from :func:`tfrec.data.sample_negatives`).
      features: keep only these names.

    Example:
      >>> sig = output_signature(has_users=False, has_items=True)  # doctest: +SKIP
      >>> sorted(sig)  # doctest: +SKIP
      ['genres', 'item_id', 'rating', 'timestamp', 'user_id', 'year']
    """
    if has_timestamp is None:
        has_timestamp = has_rating
    names = [F.USER_ID, F.ITEM_ID]
    names += [F.RATING] if has_rating else []
    names += [F.TIMESTAMP] if has_timestamp else []
    names += list(F.USER_FEATURES) if has_users else []
    names += list(F.ITEM_FEATURES) if has_items else []
    names += [LABEL] if has_label else []
    if features is not None:
        wanted = _check_feature_names(features)
        names = [n for n in names if n in wanted]
    return {n: _spec(n) for n in names}


def _check_feature_names(features) -> set:
    if isinstance(features, str):
        features = [features]
    wanted = set(features)
    unknown = sorted(wanted - set(_ORDER))
    if unknown:
        raise ConfigError(f"unknown feature name(s) {unknown}; expected names from {', '.join(_ORDER)}")
    return wanted


def feature_columns(ratings: pd.DataFrame, items: Optional[pd.DataFrame] = None,
                    users: Optional[pd.DataFrame] = None, features: Optional[Sequence[str]] = None,
                    label_key: Optional[str] = None) -> dict:
    """One numpy column per feature, in contract order, ready for either pipeline.

    Strings are object arrays of ``str`` (``genres``: shape ``[n, MAX_GENRES]``), integers
    int64 and floats float32. ``rating``/``timestamp``/``label`` are taken from ``ratings`` when
    it has them. ``features`` keeps a subset (``label_key`` is always kept).
    """
    if not isinstance(ratings, pd.DataFrame):
        raise DataError(f"expected a ratings DataFrame, got {type(ratings).__name__}")
    for col in (F.USER_ID, F.ITEM_ID):
        if col not in ratings.columns:
            raise DataError(f"ratings frame is missing column {col!r}; has {list(ratings.columns)}")
    present = {c for c in (F.RATING, F.TIMESTAMP, LABEL) if c in ratings.columns}
    base = pd.DataFrame({
        F.USER_ID: ratings[F.USER_ID].to_numpy(),
        F.ITEM_ID: ratings[F.ITEM_ID].to_numpy(),
        F.RATING: ratings[F.RATING].to_numpy() if F.RATING in present else np.zeros(len(ratings), np.float32),
        F.TIMESTAMP: ratings[F.TIMESTAMP].to_numpy() if F.TIMESTAMP in present else np.zeros(len(ratings), np.int64),
    })
    for col in (F.RATING, F.TIMESTAMP, LABEL):
        if col in present and ratings[col].isna().any():
            row = int(np.flatnonzero(ratings[col].isna().to_numpy())[0])
            raise DataError(f"ratings column {col!r} has a missing value at row {row}")
    if F.is_schema_data(items, users):
        return _schema_columns(base, ratings, present, items, users, features, label_key)
    joined = F.feature_frame(base, items=items, users=users)
    drop = [c for c in (F.RATING, F.TIMESTAMP) if c not in present]
    joined = joined.drop(columns=drop)
    if LABEL in present:
        joined[LABEL] = ratings[LABEL].to_numpy(dtype=np.float32)
    keep = None
    if features is not None:
        keep = _check_feature_names(features) | ({label_key} if label_key else set())
    cols = {}
    for name in _ORDER:
        if name not in joined.columns or (keep is not None and name not in keep):
            continue
        values = joined[name]
        if name == F.GENRES:
            cols[name] = np.array(values.tolist(), dtype=object).reshape(len(joined), F.MAX_GENRES)
        elif name in _STRING:
            cols[name] = values.astype(str).to_numpy(dtype=object)
        elif name in _INT:
            cols[name] = values.to_numpy(dtype=np.int64)
        else:
            cols[name] = values.to_numpy(dtype=np.float32)
    _check_missing(keep, cols)
    return cols


def _check_missing(keep, cols) -> None:
    if keep is not None:
        missing = sorted(keep - set(cols))
        if missing:
            raise ConfigError(f"feature(s) {missing} are not available here (have {list(cols)}); pass users= "
                              "for user features, items= for item features")


def _schema_columns(base, ratings, present, items, users, features, label_key) -> dict:
    """:func:`feature_columns` for a schema.json dataset: its own feature names and types."""
    specs = F.side_specs(items, users)
    keep = None
    if features is not None:
        wanted = {features} if isinstance(features, str) else set(features)
        unknown = sorted(wanted - set(_ORDER[:4]) - {LABEL} - set(specs))
        if unknown:
            raise ConfigError(f"unknown feature name(s) {unknown}; this dataset has "
                              f"{', '.join(list(_ORDER[:4]) + list(specs))}")
        keep = wanted | ({label_key} if label_key else set())
    cols = {F.USER_ID: base[F.USER_ID].astype(str).to_numpy(dtype=object),
            F.ITEM_ID: base[F.ITEM_ID].astype(str).to_numpy(dtype=object)}
    if F.RATING in present:
        cols[F.RATING] = base[F.RATING].to_numpy(dtype=np.float32)
    if F.TIMESTAMP in present:
        cols[F.TIMESTAMP] = base[F.TIMESTAMP].to_numpy(dtype=np.int64)
    cols.update(F.side_values(users, F.USER_ID, specs, "user", cols[F.USER_ID]))
    cols.update(F.side_values(items, F.ITEM_ID, specs, "item", cols[F.ITEM_ID]))
    if LABEL in present:
        cols[LABEL] = ratings[LABEL].to_numpy(dtype=np.float32)
    if keep is not None:
        cols = {k: v for k, v in cols.items() if k in keep}
    _check_missing(keep, cols)
    return cols


def column_spec(name: str, values: np.ndarray):
    """The ``tf.TensorSpec`` of one example of a column (dtype and shape from the array)."""
    import tensorflow as tf

    dtype = tf.string if values.dtype == object else tf.int64 if values.dtype.kind in "iu" else tf.float32
    return tf.TensorSpec(shape=values.shape[1:], dtype=dtype, name=name)


def _check_args(batch_size, label_key, cols, seed, shuffle_buffer) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if shuffle_buffer is not None and (isinstance(shuffle_buffer, bool) or
                                       not isinstance(shuffle_buffer, (int, np.integer)) or shuffle_buffer < 1):
        raise ConfigError(f"shuffle_buffer must be a positive integer or None, got {shuffle_buffer!r}")
    if label_key is not None and label_key not in cols:
        raise ConfigError(f"label_key {label_key!r} is not a column of the pipeline (has {list(cols)})")


def _finish(ds, *, n: int, batch_size: int, shuffle: bool, seed: int, cache: bool, drop_remainder: bool,
            label_key: Optional[str], repeat: bool, shuffle_buffer: Optional[int]):
    import tensorflow as tf

    if cache:
        ds = ds.cache()
    if shuffle:
        # Full-size buffer by default: a true uniform shuffle (MovieLens logs are time-ordered
        # or user-ordered, and a small buffer would keep that order).
        buffer = max(1, n if shuffle_buffer is None else min(shuffle_buffer, n))
        ds = ds.shuffle(buffer_size=buffer, seed=int(seed), reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if label_key is not None:
        def split(d):
            d = dict(d)
            return d, d.pop(label_key)

        ds = ds.map(split, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def tensor_dataset(ratings: pd.DataFrame, *, items: Optional[pd.DataFrame] = None,
                   users: Optional[pd.DataFrame] = None, batch_size: int = 1024, shuffle: bool = True,
                   seed: int = 0, cache: bool = True, drop_remainder: bool = False, label_key: Optional[str] = None,
                   features: Optional[Sequence[str]] = None, repeat: bool = False,
                   shuffle_buffer: Optional[int] = None):
    """Batches of feature dicts built with ``from_tensor_slices`` (arguments as :func:`make_dataset`)."""
    import tensorflow as tf

    cols = feature_columns(ratings, items=items, users=users, features=features, label_key=label_key)
    _check_args(batch_size, label_key, cols, seed, shuffle_buffer)
    ds = tf.data.Dataset.from_tensor_slices(
        {k: tf.constant(v, dtype=column_spec(k, v).dtype) for k, v in cols.items()})
    return _finish(ds, n=len(ratings), batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                   drop_remainder=drop_remainder, label_key=label_key, repeat=repeat, shuffle_buffer=shuffle_buffer)


def _python_rows(cols: dict) -> tuple[list, list]:
    """Columns as Python lists (UTF-8 bytes for strings), the cheapest things to yield."""
    names, lists = [], []
    for name, values in cols.items():
        if values.dtype == object and values.ndim == 2:
            lists.append([[g.encode("utf-8") for g in row] for row in values.tolist()])
        elif values.dtype == object:
            lists.append([s.encode("utf-8") for s in values.tolist()])
        else:
            lists.append(values.tolist())
        names.append(name)
    return names, lists


def generator_dataset(ratings: pd.DataFrame, *, items: Optional[pd.DataFrame] = None,
                      users: Optional[pd.DataFrame] = None, batch_size: int = 1024, shuffle: bool = True,
                      seed: int = 0, cache: bool = True, drop_remainder: bool = False,
                      label_key: Optional[str] = None, features: Optional[Sequence[str]] = None,
                      repeat: bool = False, shuffle_buffer: Optional[int] = None):
    """Batches of feature dicts built with ``from_generator`` and an explicit ``output_signature``.

    The generator yields one example at a time as a dict matching :func:`output_signature`, like
    the workshop seed. Its per-example cost is Python's, so it is slower than
    :func:`tensor_dataset` on the first pass; with ``cache=True`` later epochs read the cache.
    Arguments as :func:`make_dataset`.
    """
    import tensorflow as tf

    cols = feature_columns(ratings, items=items, users=users, features=features, label_key=label_key)
    _check_args(batch_size, label_key, cols, seed, shuffle_buffer)
    signature = {name: column_spec(name, values) for name, values in cols.items()}
    # Pre-convert once; every pass of the generator then only zips lists (no pandas, no numpy
    # scalar boxing per example).
    names, lists = _python_rows(cols)

    def examples():
        for row in zip(*lists):
            yield dict(zip(names, row))

    ds = tf.data.Dataset.from_generator(examples, output_signature=signature)
    return _finish(ds, n=len(ratings), batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                   drop_remainder=drop_remainder, label_key=label_key, repeat=repeat, shuffle_buffer=shuffle_buffer)


def make_dataset(ratings: pd.DataFrame, *, items: Optional[pd.DataFrame] = None,
                 users: Optional[pd.DataFrame] = None, pipeline: str = "tensor", batch_size: int = 1024,
                 shuffle: bool = True, seed: int = 0, cache: bool = True, drop_remainder: bool = False,
                 label_key: Optional[str] = None, features: Optional[Sequence[str]] = None, repeat: bool = False,
                 shuffle_buffer: Optional[int] = None):
    """A batched ``tf.data.Dataset`` of feature dicts, built by ``pipeline``.

    Args:
      ratings: rows to stream: ``user_id``, ``item_id`` and any of ``rating``, ``timestamp``,
        ``label`` (e.g. the output of :func:`tfrec.data.sample_negatives`).
      items, users: side tables; when given, ``genres``/``year`` resp. ``gender``/``age``/
        ``occupation``/``zip`` are joined in (unknown ids get ``""``/0 values).
      pipeline: ``"tensor"`` (``from_tensor_slices``) or ``"generator"`` (``from_generator``);
        both yield identical elements.
      batch_size: examples per batch (the last one may be smaller unless ``drop_remainder``).
      shuffle: shuffle with ``seed``; a new order every epoch, the same sequence of orders for
        the same seed.
      seed: shuffle seed.
      cache: cache examples after the first pass (the generator then runs only once).
      drop_remainder: drop the last partial batch.
      label_key: yield ``(features, label)`` with ``label = features.pop(label_key)``, e.g.
        ``"rating"`` for rating models or ``"label"`` after negative sampling.
      features: keep only these feature names (``label_key`` is kept regardless).
      repeat: repeat indefinitely (use with ``steps_per_epoch``).
      shuffle_buffer: shuffle buffer size (default: the whole dataset, a uniform shuffle).

    Returns:
      ``tf.data.Dataset`` of dicts ``{name: Tensor[batch, ...]}`` (see the module docstring), or
      of ``(dict, Tensor[batch])`` pairs when ``label_key`` is given.

    Example:
      >>> ds = make_dataset(data.ratings, items=data.items, users=data.users, batch_size=256)  # doctest: +SKIP
      >>> next(iter(ds))["genres"].shape  # doctest: +SKIP
      TensorShape([256, 10])
    """
    if pipeline not in PIPELINES:
        raise ConfigError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}")
    build = tensor_dataset if pipeline == "tensor" else generator_dataset
    return build(ratings, items=items, users=users, batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache,
                 drop_remainder=drop_remainder, label_key=label_key, features=features, repeat=repeat,
                 shuffle_buffer=shuffle_buffer)
