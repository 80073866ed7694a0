"""Prepared datasets: a ratings log as sharded TFRecords that training streams (the reading side).

``tfrec data prepare`` (:func:`tfrec.data.prepare.prepare_dataset`) writes a PREPARED folder::

    PREPARED/
      prepared.json        format version, dataset, split, counts, shard list, feature spec, files
      vocabularies.json    a Vocabulary per feature, fitted on the training split (tfrec.data.vocab)
      train-00000-of-00032.tfrecord ...   the training examples
      test.csv             the held-out split (user_id, item_id, rating, timestamp; a schema
                           dataset: rating / timestamp only when its schema names them)
      validation.csv       temporal split only
      state.npz            what a fitted recommender keeps, in vocabulary indices: per-user seen
                           items (CSR), item and user counts, the rating sum, the last-N serving
                           history; plain arrays (loaded with allow_pickle=False)
      items.csv, users.csv side tables (genres "|"-joined); your own data (a schema.json
                           dataset): items.parquet, users.parquet, typed by prepared.json's
                           "schema", whose fitted feature specs are its "side_features"

Training examples carry the data contract's feature names: ``user_id``, ``item_id`` (tf.string),
``rating`` (float32), ``timestamp`` (int64), plus ``gender``, ``age``, ``occupation``, ``zip`` with
demographics and ``genres`` [MAX_GENRES], ``year`` with an item table, and ``history_items``:
int64 [H], the two-tower's training history (the item-vocabulary indices, 0 = padding, of the items
the user rated up to the example's second, itself left out, most recent last) -- what
:class:`tfrec.models.TwoTower` computes from the whole log in memory, so streaming needs no log.
A schema.json dataset's examples carry its own feature names instead of the MovieLens ones
(numeric: float32, NaN missing; categorical / text: string; multi_categorical: string [length]),
and ``rating`` / ``timestamp`` only when the schema names them (without timestamps the histories
are all padding, as in memory).

Each TFRecord record is one ``tf.train.Example`` holding a *block* of ``block_rows`` (64) examples:
every feature is the list of the block's values, row after row. Rows are assigned to blocks and
blocks to shards in a seeded random order, so a block is a random sample of the training split.
Blocks rather than one Example per rating because encoding costs per message (measured: ~30 us
a rating one per Example, 16 minutes of a 32M prepare; under 0.5 us a rating per block).
:func:`shard_dataset` reads them back as ordinary batches of examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.data.vocab import load_vocabularies
from tfrec.errors import ConfigError, DataError

FORMAT = "tfrec-prepared"
FORMAT_VERSION = 1
PREPARED_FILE = "prepared.json"
# Training history, as the two-tower's query tower reads it (tfrec.models.towers.HISTORY_ITEMS):
# item-vocabulary indices (1-based, vocabularies.json order; 0 = padding).
HISTORY_ITEMS = "history_items"
DEFAULT_BLOCK_ROWS = 64
SPLITS = ("random", "temporal", "leave_last_out", "cold_start")
DEFAULT_HISTORY_LENGTH = 50  # TwoTower's default history_length: a default prepare trains a default TwoTower


def feature_spec(spec: dict, names: Optional[Sequence[str]] = None) -> dict:
    """``tf.io.RaggedFeature`` per feature name of a ``prepared.json`` ``features`` entry (a
    record holds a block of rows, so every feature is a list of ``rows * prod(shape)`` values)."""
    import tensorflow as tf

    dtypes = {"string": tf.string, "float32": tf.float32, "int64": tf.int64}
    wanted = list(spec) if names is None else list(names)
    missing = [n for n in wanted if n not in spec]
    if missing:
        raise ConfigError(f"the prepared examples have no feature(s) {missing}; they have {sorted(spec)}")
    return {n: tf.io.RaggedFeature(dtypes[spec[n]["dtype"]], row_splits_dtype=tf.int64) for n in wanted}


def shard_dataset(files, spec: dict, *, batch_size: int, features: Optional[Sequence[str]] = None,
                  label_key: Optional[str] = None, shuffle: bool = True, shuffle_buffer: int = 65536,
                  seed: int = 0, drop_remainder: bool = False, cycle_length: int = 4, repeat: bool = False,
                  block_rows: int = DEFAULT_BLOCK_ROWS):
    """A ``tf.data`` pipeline over prepared TFRecord ``files``: batches of feature dicts.

    Files are shuffled and read ``cycle_length`` at a time (interleaved); records (blocks of
    ``block_rows`` examples whose rows were drawn at random when written) are shuffled within a
    buffer of ``shuffle_buffer`` examples, parsed a few at a time with ``tf.io.parse_example`` and
    re-batched to ``batch_size`` examples, so a batch mixes ``batch_size / block_rows`` random
    blocks. Memory is bounded by the buffer whatever the number of files or examples. For
    multi-worker training, shard ``files`` (or the file dataset) per worker before calling this.

    Args:
      files: TFRecord paths (list of str) or a ``tf.data.Dataset`` of them.
      spec: the ``features`` entry of ``prepared.json`` (name -> dtype and per-example shape).
      batch_size: examples per batch.
      features: feature names to parse (default: all in ``spec``).
      label_key: yield ``(features, label)`` with ``label = features.pop(label_key)``.
      shuffle, shuffle_buffer, seed: shuffling (files are reshuffled every epoch too).
      drop_remainder: drop a final partial batch.
      repeat: loop forever (callers cap an epoch with ``steps_per_epoch``).
      block_rows: examples per record (``prepared.json`` ``block_rows``).

    Returns:
      A dataset of dicts ``{name: tensor [batch, *shape]}`` (or ``(dict, label)``).
    """
    import tensorflow as tf

    names = list(features) if features is not None else list(spec)
    if label_key is not None and label_key not in names:
        names.append(label_key)
    parse_spec = feature_spec(spec, names)
    shapes = {n: list(spec[n]["shape"]) for n in names}
    if isinstance(files, tf.data.Dataset):
        ds, n_files = files, None
    else:
        files = [str(f) for f in files]
        if not files:
            raise ConfigError("shard_dataset: no files to read")
        ds, n_files = tf.data.Dataset.from_tensor_slices(files), len(files)
    if shuffle:
        ds = ds.shuffle(n_files or 1024, seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(cycle_length, n_files or cycle_length)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    if shuffle:
        ds = ds.shuffle(max(1, shuffle_buffer // block_rows), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        # After the shuffles: every pass reads every record once, in a new order. (Repeating the
        # file list instead let a buffer larger than the data mix several passes, so rows came
        # back unevenly; on small data that cost ~15% NDCG in a 3-epoch two-tower fit.)
        ds = ds.repeat()
    ds = ds.batch(max(1, -(-batch_size // block_rows)))

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, parse_spec)
        return {n: tf.reshape(parsed[n].flat_values, [-1] + shapes[n]) for n in names}

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).rebatch(batch_size, drop_remainder=drop_remainder)
    if label_key is not None:
        ds = ds.map(lambda d: ({k: v for k, v in d.items() if k != label_key}, d[label_key]))
    return ds.prefetch(tf.data.AUTOTUNE)


class PreparedDataset:
    """An opened PREPARED folder written by :func:`prepare_dataset`.

    Attributes:
      path: the folder; meta: the ``prepared.json`` dict.

    Raises (on open):
      DataError: the folder is not a prepared dataset (no or unreadable ``prepared.json``, another
        format version, or listed files missing); the message says how to make one.
    """

    def __init__(self, path):
        self.path = Path(path)
        meta_path = self.path / PREPARED_FILE
        how = "make one with `tfrec data prepare --dataset NAME --data-dir DIR --split SPLIT --out PREPARED`"
        if not self.path.is_dir():
            raise DataError(f"{self.path}: not a prepared dataset (no such folder); {how}")
        if not meta_path.is_file():
            raise DataError(f"{self.path}: not a prepared dataset (no {PREPARED_FILE}); {how}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{meta_path}: not a valid {PREPARED_FILE} ({exc}); {how}") from None
        found = meta.get("format") if isinstance(meta, dict) else None
        if found != FORMAT:
            raise DataError(f"{meta_path}: not a tfrec prepared dataset (format {found!r}, expected {FORMAT!r}); {how}")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{meta_path}: format_version {meta.get('format_version')!r}; this tfrec reads version "
                            f"{FORMAT_VERSION} (prepare the dataset again)")
        missing = [s["path"] for s in meta.get("shards", []) if not (self.path / s["path"]).is_file()]
        for key in ("vocabularies", "state", "test"):
            if not meta.get(key) or not (self.path / meta[key]).is_file():
                missing.append(str(meta.get(key) or key))
        if missing:
            raise DataError(f"{self.path}: prepared dataset is incomplete, missing {missing[:5]}; prepare it again")
        self.meta = meta

    # -- parts -------------------------------------------------------------------------------------
    @property
    def shard_files(self) -> list:
        """The training TFRecord paths (str), in shard order."""
        return [str(self.path / s["path"]) for s in self.meta["shards"]]

    @property
    def features(self) -> dict:
        return self.meta["features"]

    @property
    def n_train(self) -> int:
        return int(self.meta["counts"]["train"])

    @property
    def history_length(self) -> int:
        return int(self.meta.get("history_length") or 0)

    def vocabularies(self) -> dict:
        return load_vocabularies(self.path / self.meta["vocabularies"])

    def state(self) -> dict:
        with np.load(self.path / self.meta["state"], allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    @property
    def schema(self) -> Optional[dict]:
        """The ``schema.json`` dict of a schema dataset (None: a MovieLens layout)."""
        return self.meta.get("schema")

    @property
    def side_features(self) -> Optional[dict]:
        """The schema features' fitted specs (type, list length, training mean/std), as a model
        fitted in memory on the training split keeps them (``side_features``)."""
        specs = self.meta.get("side_features")
        return {name: dict(spec) for name, spec in sorted(specs.items())} if specs else None

    def _typed_side(self, key: str, id_name: str) -> pd.DataFrame:
        from tfrec.data.tables import read_side_parquet

        types = ((self.schema or {}).get(key) or {}).get("features", {})
        return read_side_parquet(self.path / self.meta[key], id_name, types)

    def items(self) -> Optional[pd.DataFrame]:
        if not self.meta.get("items"):
            return None
        if self.schema is not None:
            return self._typed_side("items", "item_id")
        frame = pd.read_csv(self.path / self.meta["items"], dtype={"item_id": str, "title": str},
                            keep_default_na=False)
        frame["year"] = pd.to_numeric(frame["year"], errors="coerce").fillna(0).astype(np.int64)
        frame["genres"] = [[g for g in str(s).split("|") if g] for s in frame["genres"]]
        return frame

    def users(self) -> Optional[pd.DataFrame]:
        if not self.meta.get("users"):
            return None
        if self.schema is not None:
            return self._typed_side("users", "user_id")
        frame = pd.read_csv(self.path / self.meta["users"], dtype={"user_id": str, "gender": str,
                                                                    "occupation": str, "zip": str},
                            keep_default_na=False)
        frame["age"] = frame["age"].astype(np.int64)
        return frame

    def _ratings(self, key: str) -> Optional[pd.DataFrame]:
        if not self.meta.get(key):
            return None
        frame = pd.read_csv(self.path / self.meta[key], dtype={"user_id": str, "item_id": str},
                            keep_default_na=False)
        if "rating" in frame:  # implicit feedback has none
            frame["rating"] = frame["rating"].astype(np.float32)
        if "timestamp" in frame:
            frame["timestamp"] = frame["timestamp"].astype(np.int64)
        return frame

    def test(self) -> pd.DataFrame:
        return self._ratings("test")

    def validation(self) -> Optional[pd.DataFrame]:
        return self._ratings("validation")

    def dataset(self, *, batch_size: int, features: Optional[Sequence[str]] = None, label_key: Optional[str] = None,
                shuffle: bool = True, shuffle_buffer: int = 65536, seed: int = 0, drop_remainder: bool = False,
                repeat: bool = False):
        """:func:`shard_dataset` over this folder's shards."""
        return shard_dataset(self.shard_files, self.features, batch_size=batch_size, features=features,
                             label_key=label_key, shuffle=shuffle, shuffle_buffer=shuffle_buffer, seed=seed,
                             drop_remainder=drop_remainder, repeat=repeat, block_rows=self.block_rows)

    @property
    def block_rows(self) -> int:
        return int(self.meta.get("block_rows") or DEFAULT_BLOCK_ROWS)

    def __repr__(self) -> str:
        c = self.meta["counts"]
        return (f"PreparedDataset({str(self.path)!r}, dataset={self.meta['dataset']!r}, split={self.meta['split']!r}, "
                f"train={c['train']:,}, test={c.get('test', 0):,}, shards={len(self.meta['shards'])})")


def open_prepared(path) -> PreparedDataset:
    """Open a PREPARED folder (DataError when it is not one)."""
    return path if isinstance(path, PreparedDataset) else PreparedDataset(path)
