"""Shared machinery for tfrec's Keras models.

:class:`KerasRecommender` is mixed into ``tf.keras.Model`` subclasses (listed *before* the Keras
base, e.g. ``class MatrixFactorization(KerasRecommender, tf.keras.Model)``; TFRS models work the
same way). It does not assume what the model predicts: the label column is ``label_key`` (a rating,
a 0/1 label, or ``None`` for TFRS tasks that compute their own loss). Every model gets:

* sklearn-style construction: hyperparameters only. The data-dependent vocabularies are an
  optional constructor argument too, so ``get_config()`` includes them and ``from_config()``
  rebuilds the complete model (layers and variables), ready for ``load_weights``;
* ``fit(train_dataframe, items=None, users=None, ...)``: fits vocabularies on the training frame
  (:func:`tfrec.data.vocab.fit_vocabularies`), builds the layers, carves a validation set from the
  training frame (``validation_fraction``) for early stopping (best weights restored), streams the
  training rows through :func:`tfrec.data.pipelines.make_dataset` into Keras ``fit`` and records
  ``history_``, ``best_epoch_`` and ``fit_seconds_``. With ``refit=True`` (the rating models'
  default) it then retrains from the initial weights on the *whole* training frame for
  ``best_epoch_`` epochs: the validation rows pick the epoch count and are then used too. Given a
  ``tf.data.Dataset`` (or arrays), ``fit`` *is* Keras's ``fit`` (the model must already be built);
* per-id side tables (user -> gender/age/occupation/zip, item -> genres/year) held in
  non-trainable variables, so ``call_ids(user_id, item_id)`` computes the model from raw string ids
  alone with the features gathered in-graph (what an exported ``serving_default`` calls), and so
  ``save_weights``/``load_weights`` carry them;
* ``predict_ratings(user_ids, item_ids)`` (numpy in, numpy out) and the recommender contract
  (``recommend``, ``similar_items``, ``score_users``) of :class:`~tfrec.models.base.RecommenderMixin`:
  every catalog item is scored for a chunk of users at a time, and ``similar_items`` is the cosine
  similarity of ``item_vectors()``.

Subclasses implement ``_build_layers()`` (create the layers from ``self.vocabularies``), ``call``
and ``item_vectors()``, list the features ``call`` reads in ``feature_names``, and call
``_init_common(...)`` at the end of ``__init__`` and ``_common_config()`` in ``get_config``.

Training speed. Tiny models such as MF spend most of their time in per-step and per-example
overhead, not arithmetic. So (a) training batches are shuffled in blocks (:func:`shuffled_batches`):
the rows are permuted once, cut into small blocks, the blocks are cached and reshuffled every
epoch and re-batched, which costs a few tensor ops per batch instead of several per example (an
element-wise shuffle of 80k examples takes ~0.3 s per epoch, longer than the model's own step
time); the refit reuses the cached blocks; (b) Keras runs ``steps_per_execution`` steps per call
into the graph; (c) layer and optimizer variables are created before Keras traces its train
function (a function that creates variables is traced twice); (d) vocabularies and the
recommender state are kept out of Keras' attribute tracking, which otherwise walks every entry of
every tracked list and dict each time it collects layers (hundreds of times per trace).
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError, DataError
from tfrec.models.base import RecommenderMixin, validate_ratings_frame

# Age codes are a closed set: an IntegerLookup over them (0 = unknown -> OOV).
AGE_VOCAB = list(F.AGE_CODES)
YEAR_BUCKETS = list(range(1920, 2021, 5))
PIPELINES = ("tensor", "generator")
_USER_SIDE = F.USER_FEATURES
_ITEM_SIDE = F.ITEM_FEATURES


# -- validation helpers (shared by every Keras model) ---------------------------------------------
def check_positive_int(name: str, value) -> int:
    """``value`` as int, or ConfigError naming ``name`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative(name: str, value) -> float:
    """``value`` as float, or ConfigError naming ``name`` unless it is a number >= 0."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}") from None
    if not v >= 0.0 or math.isinf(v):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    return v


def check_positive(name: str, value) -> float:
    """``value`` as float, or ConfigError naming ``name`` unless it is a number > 0."""
    v = check_non_negative(name, value)
    if v <= 0.0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return v


def check_fraction(name: str, value, *, allow_zero: bool = True) -> float:
    """``value`` as float in [0, 1) (or (0, 1)), else ConfigError naming ``name``."""
    v = check_non_negative(name, value)
    if v >= 1.0 or (v == 0.0 and not allow_zero):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return v


def check_layer_sizes(name: str, value) -> list:
    """A list of positive ints, or ConfigError naming ``name``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}")
    sizes = list(value)
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}")
    return [int(s) for s in sizes]


def check_seed(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


def string_lookup(values: Sequence[str], name: str) -> tf.keras.layers.StringLookup:
    """Raw strings -> ids, 0 = out of vocabulary (the :class:`tfrec.data.Vocabulary` layout)."""
    # A numpy array, not a list: Keras tracks list attributes and walks every element each time it
    # collects layers (hundreds of times while tracing), which made tracing seconds slower.
    vocab = np.asarray([str(v) for v in values], dtype=object)
    return tf.keras.layers.StringLookup(vocabulary=vocab, num_oov_indices=1, mask_token=None, name=name)


class _Untracked:
    """Holds a value outside Keras' attribute tracking (see :func:`string_lookup` for why)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _to_str_list(values) -> list:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _as_str_array(values) -> np.ndarray:
    flat = np.asarray(values, dtype=object).reshape(-1)
    return np.asarray(_to_str_list(flat), dtype=object)


def _normalise_vocabularies(vocabularies) -> Optional[dict]:
    """``{name: [str, ...]}`` from lists or :class:`tfrec.data.vocab.Vocabulary` objects."""
    if vocabularies is None:
        return None
    if not isinstance(vocabularies, dict):
        raise ConfigError(f"vocabularies must be a dict of feature name -> list of values, got "
                          f"{type(vocabularies).__name__}")
    out = {}
    for name, vocab in vocabularies.items():
        values = vocab.values if hasattr(vocab, "lookup") else vocab  # a tfrec Vocabulary
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ConfigError(f"vocabularies[{name!r}] must be a list of strings, got {values!r}")
        out[str(name)] = _to_str_list(values)
    for name in (F.USER_ID, F.ITEM_ID):
        if not out.get(name):
            raise ConfigError(f"vocabularies must include a non-empty {name!r} list, got keys {sorted(out)}")
    return out


# -- the training pipeline ---------------------------------------------------------------------------
def cached_blocks(frame: pd.DataFrame, *, block_size: int, seed: int = 0, items=None, users=None,
                  pipeline: str = "tensor", label_key: Optional[str] = None,
                  features: Optional[Sequence[str]] = None):
    """``frame``'s rows in a seeded random order, as cached blocks of ``block_size`` examples.

    The blocks come from :func:`tfrec.data.pipelines.make_dataset` (``pipeline``, ``items``,
    ``users``, ``label_key``, ``features`` as there) and are cached in memory after the first
    pass, so later epochs (and datasets built on them) never redo the per-example work.
    """
    from tfrec.data.pipelines import make_dataset

    block_size = check_positive_int("block_size", block_size)
    order = np.random.default_rng(seed).permutation(len(frame))
    permuted = frame.iloc[order].reset_index(drop=True)
    return make_dataset(permuted, items=items, users=users, pipeline=pipeline, batch_size=block_size, shuffle=False,
                        cache=False, label_key=label_key, features=features).cache()


def epoch_batches(blocks, n_rows: int, *, batch_size: int, seed: int = 0, shuffle: bool = True):
    """Batches of ``batch_size`` from ``blocks`` (of ``n_rows`` rows), in a new block order every epoch.

    Shuffling blocks rather than examples keeps the cost per batch, not per example: an
    element-wise shuffle of 80k examples takes ~0.3 s an epoch, more than MF's own training step.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if shuffle:
        blocks = blocks.shuffle(1 << 20, seed=seed, reshuffle_each_iteration=True)  # buffer >= n blocks
    # rebatch hides the cardinality, which Keras needs with steps_per_execution > 1.
    n_batches = max(1, -(-n_rows // batch_size))
    ds = blocks.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(n_batches))
    return ds.prefetch(tf.data.AUTOTUNE)


def default_block_size(batch_size: int) -> int:
    """Rows per shuffled block: 1/32 of a batch (at most 256), so a batch mixes >= 32 blocks."""
    return max(1, min(256, int(batch_size) // 32))


def shuffled_batches(frame: pd.DataFrame, *, batch_size: int, seed: int = 0, items=None, users=None,
                     pipeline: str = "tensor", label_key: Optional[str] = None,
                     features: Optional[Sequence[str]] = None, block_size: Optional[int] = None):
    """Training batches from :func:`tfrec.data.pipelines.make_dataset`, reshuffled every epoch.

    The rows are permuted once (seeded) and cut into cached blocks (:func:`cached_blocks`; default
    :func:`default_block_size`); every epoch shuffles the blocks and re-batches them to
    ``batch_size`` (:func:`epoch_batches`), so each epoch sees a new order and new batch
    compositions at a per-block rather than per-example cost. Elements are those of
    ``make_dataset`` (a feature dict, or ``(features, label)`` with ``label_key``).
    """
    blocks = cached_blocks(frame, block_size=block_size or default_block_size(batch_size), seed=seed, items=items,
                           users=users, pipeline=pipeline, label_key=label_key, features=features)
    return epoch_batches(blocks, len(frame), batch_size=batch_size, seed=seed)


# -- the mixin ---------------------------------------------------------------------------------------
class KerasRecommender(RecommenderMixin):
    """Mixin for tfrec's Keras models (see the module docstring for what it provides).

    Class attributes a subclass sets:
      feature_names: the features ``call`` reads (the pipeline is restricted to these).
      label_key: the training label column (``"rating"``; ``"label"`` after negative sampling;
        ``None`` when the model computes its own loss, as TFRS models do).
      uses_side_features: the model reads demographics / item features (its vocabularies then
        include them and it keeps per-id side tables for ``call_ids``).
    """

    feature_names: tuple = (F.USER_ID, F.ITEM_ID)
    label_key: Optional[str] = F.RATING
    # Plain recommender state (RecommenderMixin). Keras would wrap these dicts for checkpoint
    # tracking and walk their thousands of entries every time it collects layers (hundreds of
    # times per trace), so they bypass Keras' __setattr__.
    _UNTRACKED = frozenset({"catalog_", "user_index_", "item_index_", "seen_", "popularity_", "history_",
                            "fit_seconds_"})
    uses_side_features: bool = False
    #: rows of the validation set per evaluation step.
    validation_batch_size: int = 16384

    def __setattr__(self, name, value):
        if name in self._UNTRACKED:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # -- construction ------------------------------------------------------------------------------
    def _init_common(self, *, vocabularies, learning_rate: float, batch_size: int, epochs: int, patience: int,
                     seed: int, pipeline: str, steps_per_execution: int = 32, refit: bool = False) -> None:
        """Validate and store the training settings; build the layers when vocabularies are given."""
        self.learning_rate = check_positive("learning_rate", learning_rate)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.epochs = check_positive_int("epochs", epochs)
        self.patience = check_positive_int("patience", patience)
        self.seed = check_seed(seed)
        if pipeline not in PIPELINES:
            raise ConfigError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}")
        self.pipeline = pipeline
        if not isinstance(refit, (bool, np.bool_)):
            raise ConfigError(f"refit must be True or False, got {refit!r}")
        self.refit = bool(refit)
        # Keras owns the `steps_per_execution` property (the compiled value); keep the setting apart.
        self._steps_per_execution_setting = check_positive_int("steps_per_execution", steps_per_execution)
        self._vocabularies = _Untracked(_normalise_vocabularies(vocabularies))
        self.side_tables = {}
        if self.vocabularies is not None:
            self._build()

    def _common_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "patience": self.patience,
            "seed": self.seed,
            "pipeline": self.pipeline,
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()} if self.vocabularies else None,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """Rebuild the model (layers and variables too when the config has vocabularies)."""
        config = dict(config)
        for key in ("name", "trainable", "dtype"):  # Keras' own keys, if a caller merged them in
            config.pop(key, None)
        return cls(**config)

    def get_params(self) -> dict:
        """Hyperparameters (the config without vocabularies)."""
        return {k: v for k, v in self.get_config().items() if k != "vocabularies"}

    @property
    def vocabularies(self) -> Optional[dict]:
        """``{feature name: [values]}`` the lookups were built from (None before the first fit)."""
        box = getattr(self, "_vocabularies", None)
        return box.value if box is not None else None

    @property
    def is_built_(self) -> bool:
        """True once the layers exist (after ``fit`` or construction with vocabularies)."""
        return getattr(self, "vocabularies", None) is not None

    def _build(self) -> None:
        self._build_layers()
        self._build_side_tables()

    def _build_layers(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- side tables: raw ids -> features, in-graph ------------------------------------------------
    @property
    def has_user_features(self) -> bool:
        return bool(self.uses_side_features and self.vocabularies and F.GENDER in self.vocabularies)

    @property
    def has_item_features(self) -> bool:
        return bool(self.uses_side_features and self.vocabularies and F.GENRES in self.vocabularies)

    @property
    def _side(self) -> dict:
        """Feature name -> per-vocabulary-index values (index 0: unknown id -> neutral values)."""
        return self.side_tables

    def _build_side_tables(self) -> None:
        # Variables (not constants) so save_weights/load_weights and SavedModels carry them; their
        # shapes follow from the vocabularies, so from_config can create them before loading.
        tables = {}
        n_users = len(self.vocabularies[F.USER_ID]) + 1
        n_items = len(self.vocabularies[F.ITEM_ID]) + 1

        def var(name, shape, dtype):
            init = tf.fill(shape, "") if dtype == tf.string else tf.zeros(shape, dtype)
            return tf.Variable(init, trainable=False, name=f"side_{name}")

        if self.has_user_features:
            for name in _USER_SIDE:
                tables[name] = var(name, [n_users], tf.int64 if name == F.AGE else tf.string)
        if self.has_item_features:
            tables[F.GENRES] = var(F.GENRES, [n_items, F.MAX_GENRES], tf.string)
            tables[F.YEAR] = var(F.YEAR, [n_items], tf.int64)
        self.side_tables = tables
        if tables:
            self.side_user_lookup = string_lookup(self.vocabularies[F.USER_ID], "side_user_lookup")
            self.side_item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "side_item_lookup")

    def _set_side_tables(self, items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> None:
        """Fill the side tables from the item/user DataFrames (rows in vocabulary order)."""
        if self.has_user_features:
            if users is None:
                raise ConfigError(f"{type(self).__name__} was built with user features (its vocabularies include "
                                  "'gender'): pass users= to fit")
            table = F.user_feature_table(users).reindex(self.vocabularies[F.USER_ID])
            self.side_tables[F.AGE].assign(np.concatenate([[0], table[F.AGE].fillna(0).to_numpy(np.int64)]))
            for name in (F.GENDER, F.OCCUPATION, F.ZIP):
                self.side_tables[name].assign([F.PAD] + table[name].fillna(F.PAD).astype(str).tolist())
        if self.has_item_features:
            if items is None:
                raise ConfigError(f"{type(self).__name__} was built with item features (its vocabularies include "
                                  "'genres'): pass items= to fit")
            table = F.item_feature_table(items).reindex(self.vocabularies[F.ITEM_ID])
            empty = [F.PAD] * F.MAX_GENRES
            genres = [empty] + [g if isinstance(g, list) else empty for g in table[F.GENRES]]
            self.side_tables[F.GENRES].assign(np.asarray(genres, dtype=object).astype(bytes))
            self.side_tables[F.YEAR].assign(np.concatenate([[0], table[F.YEAR].fillna(0).to_numpy(np.int64)]))

    def _user_index(self, user_id):
        return self.side_user_lookup(user_id)

    def _item_index(self, item_id):
        return self.side_item_lookup(item_id)

    def features_from_ids(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict:
        """The model's feature dict for raw ids (tf.string [batch]), side features gathered in-graph.

        Unknown ids get the neutral values the pipelines use for rows missing from a side table
        (``""``, age 0, year 0, all-padding genres).
        """
        feats = {F.USER_ID: user_id, F.ITEM_ID: item_id}
        side = self.side_tables
        if F.GENDER in side:
            u = self._user_index(user_id)
            for name in _USER_SIDE:
                feats[name] = tf.gather(side[name], u)
        if F.GENRES in side:
            i = self._item_index(item_id)
            for name in _ITEM_SIDE:
                feats[name] = tf.gather(side[name], i)
        return feats

    def call_ids(self, user_id: tf.Tensor, item_id: tf.Tensor) -> tf.Tensor:
        """The model's output (float32 [batch]) from raw string ids alone (tf.function friendly)."""
        return tf.reshape(self(self.features_from_ids(user_id, item_id), training=False), [-1])

    def ranking_scores(self, features: dict) -> tf.Tensor:
        """Scores used to rank items (default: the model output), float32 [batch]."""
        return tf.reshape(self(features, training=False), [-1])

    def serving_function(self, output_name: str = "rating"):
        """A ``tf.function`` ``(user_id [None] str, item_id [None] str) -> {output_name: [None] float32}``.

        Suitable as a SavedModel signature: features are looked up inside the model.
        """
        self._check_built()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=F.USER_ID),
                                      tf.TensorSpec([None], tf.string, name=F.ITEM_ID)])
        def serve(user_id, item_id):
            return {output_name: self.call_ids(user_id, item_id)}

        return serve

    # -- training ----------------------------------------------------------------------------------
    def fit(self, x=None, y=None, *, items: Optional[pd.DataFrame] = None, users: Optional[pd.DataFrame] = None,
            validation_data=None, validation_fraction: float = 0.1, epochs: Optional[int] = None,
            batch_size: Optional[int] = None, pipeline: Optional[str] = None, verbose="auto", callbacks=None,
            **kwargs):
        """Fit on a ratings DataFrame (tfrec) or on a ``tf.data.Dataset`` / arrays (plain Keras).

        With a DataFrame ``x`` (columns ``user_id``, ``item_id`` and the label, e.g. ``rating``):
        fits vocabularies (first call only), builds the layers and side tables, holds out a random
        ``validation_fraction`` of ``x`` (or uses ``validation_data``, a DataFrame) for early
        stopping on the validation loss with ``patience`` and best-weight restoring, and trains for
        at most ``epochs`` (default: the constructor's) epochs. Returns ``self``; ``history_`` holds
        the per-epoch metrics and ``fit_seconds_`` the wall time of the whole call.

        Anything else is passed to Keras ``fit`` unchanged (``epochs`` defaults to 1 there, as in
        Keras) and its ``History`` is returned; the model must be built (fitted on a DataFrame
        once, or constructed with ``vocabularies``).

        Args:
          items, users: side tables for models that use item / user features.
          validation_fraction: share of ``x`` held out for early stopping (0: no early stopping).
          pipeline: ``"tensor"`` or ``"generator"`` (default: the constructor's).
          verbose, callbacks, **kwargs: as for Keras ``fit``.
        """
        if isinstance(x, pd.DataFrame):
            if y is not None:
                raise ConfigError("fit(DataFrame) takes no y: the label is the frame's "
                                  f"{self.label_key or 'implicit'!r} column")
            return self._fit_frame(
                x, items=items, users=users, validation_data=validation_data,
                validation_fraction=check_fraction("validation_fraction", validation_fraction),
                epochs=check_positive_int("epochs", epochs) if epochs is not None else self.epochs,
                batch_size=check_positive_int("batch_size", batch_size) if batch_size is not None else self.batch_size,
                pipeline=self._check_pipeline(pipeline), verbose=verbose, callbacks=callbacks, **kwargs)
        if not self.is_built_:
            raise ConfigError(f"{type(self).__name__}.fit({type(x).__name__}) needs a built model: fit on a ratings "
                              "DataFrame first, or construct it with vocabularies=")
        if not getattr(self, "_is_compiled", False):
            self._compile_default()
        return super().fit(x, y, validation_data=validation_data, epochs=epochs or 1, batch_size=batch_size,
                           verbose=verbose, callbacks=callbacks, **kwargs)

    def _check_pipeline(self, pipeline) -> str:
        if pipeline is None:
            return self.pipeline
        if pipeline not in PIPELINES:
            raise ConfigError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}")
        return pipeline

    def _prepare(self, train: pd.DataFrame, items, users) -> None:
        """Vocabularies (first fit only), layers, side tables and recommender state from train."""
        from tfrec.data.vocab import fit_vocabularies

        self._remember_training_data(train)
        if self.vocabularies is None:
            mean = self._global_mean_from(train[F.RATING]) if F.RATING in train else None
            if mean is not None:
                self.global_mean = mean  # the output offset the first fit starts from
            vocabs = fit_vocabularies(train, items=items if self.uses_side_features else None,
                                      users=users if self.uses_side_features else None)
            self._vocabularies = _Untracked(_normalise_vocabularies(vocabs))
            self._build()
        self._set_side_tables(items, users)

    def _global_mean_from(self, ratings: pd.Series) -> Optional[float]:
        """The ``global_mean`` a first fit sets from the training ratings (None: the model has none)."""
        return float(ratings.mean()) if getattr(self, "global_mean", None) is not None else None

    def _training_frame(self, train: pd.DataFrame, epoch: int = 0) -> pd.DataFrame:
        """The rows Keras trains on in ``epoch`` (NeuMF's implicit objective adds sampled negatives)."""
        return train

    def _validation_frame(self, val: pd.DataFrame) -> pd.DataFrame:
        return val

    #: True when ``_training_frame`` gives new rows every epoch (one Keras ``fit`` call per epoch).
    resample_each_epoch: bool = False
    #: default of the ``refit`` setting (retrain on the whole frame after early stopping).
    refit: bool = False

    def _feature_subset(self) -> list:
        return [n for n in self.feature_names if n in (F.USER_ID, F.ITEM_ID) or n in self.side_tables]

    def _pipeline_kwargs(self, items, users, pipeline) -> dict:
        names = self._feature_subset() + ([self.label_key] if self.label_key else [])
        return dict(items=items if self.has_item_features else None, users=users if self.has_user_features else None,
                    pipeline=pipeline, label_key=self.label_key, features=names)

    def _dataset(self, frame, items, users, *, batch_size, pipeline, shuffle, seed):
        """A ``make_dataset`` pipeline over ``frame`` with the features this model reads."""
        from tfrec.data.pipelines import make_dataset

        kwargs = self._pipeline_kwargs(items, users, pipeline)
        if shuffle:
            return shuffled_batches(frame, batch_size=batch_size, seed=seed, **kwargs)
        # Evaluation data: one pass in order, batches cached after the first epoch.
        return make_dataset(frame, batch_size=batch_size, shuffle=False, cache=False, **kwargs).cache()

    def _single_pass_dataset(self, frame, items, users, *, batch_size, pipeline, seed):
        """Batches for one epoch over rows made for it (e.g. fresh negatives): permuted in numpy,
        neither cached nor shuffled by tf.data, which would only add per-example work."""
        from tfrec.data.pipelines import make_dataset

        order = np.random.default_rng(seed).permutation(len(frame))
        names = self._feature_subset() + ([self.label_key] if self.label_key else [])
        ds = make_dataset(frame.iloc[order].reset_index(drop=True), items=items if self.has_item_features else None,
                          users=users if self.has_user_features else None, pipeline=pipeline,
                          batch_size=batch_size, shuffle=False, cache=False, label_key=self.label_key, features=names)
        return ds.apply(tf.data.experimental.assert_cardinality(max(1, -(-len(frame) // batch_size))))

    def _compile_default(self) -> None:
        self.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate), loss=self._default_loss(),
                     metrics=self._default_metrics(), steps_per_execution=self._default_steps_per_execution())

    def _prebuild_for_training(self) -> None:
        """Create the layer and optimizer variables before Keras traces its train function.

        A ``tf.function`` that creates variables on its first call is traced twice; building them
        up front saves one trace (about half a second for MF, a large share of a 3 s fit).
        """
        y_pred = self._build_all_variables()
        if type(self).train_step is not tf.keras.Model.train_step:
            return  # a custom step (TFRS) may create more variables than the forward pass does
        optimizer = getattr(self, "optimizer", None)
        if hasattr(optimizer, "build"):
            optimizer.build(self.trainable_variables)  # a no-op once built
        # Keras' loss and metric containers create their variables on first use too. These are
        # tf-keras internals, so any mismatch just leaves the work to the first trace.
        if y_pred is not None and self.label_key is not None:
            try:
                y_true = tf.zeros_like(y_pred)
                if not self.compiled_loss._built:
                    self.compiled_loss.build(y_pred)
                if not self.compiled_metrics._built:
                    self.compiled_metrics.build(y_pred, y_true)
            except Exception:  # pragma: no cover - depends on Keras internals
                pass

    def _default_loss(self):
        return tf.keras.losses.MeanSquaredError()

    def _default_metrics(self):
        return [tf.keras.metrics.RootMeanSquaredError(name="rmse")]

    def _default_steps_per_execution(self) -> int:
        # Tiny models are dominated by Keras' per-step Python overhead: run many steps per call.
        return getattr(self, "_steps_per_execution_setting", 32)

    def _split_validation(self, train, validation_data, validation_fraction):
        if validation_data is not None:
            if not isinstance(validation_data, pd.DataFrame):
                raise ConfigError("validation_data for fit(DataFrame) must be a ratings DataFrame, got "
                                  f"{type(validation_data).__name__}")
            validate_ratings_frame(validation_data, name="validation_data", need_rating=self.label_key == F.RATING)
            return train, validation_data
        if validation_fraction > 0:
            from tfrec.data.splits import random_split

            fit_part, val_part = random_split(train, test_fraction=validation_fraction, seed=self.seed)
            if len(fit_part) == 0 or len(val_part) == 0:
                raise DataError(f"train has {len(train)} rows: too few to hold out validation_fraction="
                                f"{validation_fraction}")
            return fit_part, val_part
        return train, None

    def _fit_frame(self, train, *, items, users, validation_data, validation_fraction, epochs, batch_size, pipeline,
                   verbose, callbacks, **kwargs):
        t0 = time.perf_counter()
        validate_ratings_frame(train, need_rating=self.label_key == F.RATING)
        # Seeds Python, NumPy and TensorFlow so a fit is repeatable for a given seed.
        tf.keras.utils.set_random_seed(self.seed)
        fit_part, val_part = self._split_validation(train, validation_data, validation_fraction)
        # Vocabularies and recommender state come from the whole training frame: validation rows
        # are training data the model is not fitted on, not held-out test data.
        self._prepare(train, items, users)
        if not getattr(self, "_is_compiled", False):
            self._compile_default()
        self._prebuild_for_training()
        refit = self.refit and val_part is not None and validation_data is None
        initial = self.get_weights() if refit else None
        run = dict(items=items, users=users, batch_size=batch_size, pipeline=pipeline, verbose=verbose,
                   callbacks=callbacks, **kwargs)
        # Models with the stock pipeline stream each part once into cached blocks; the refit then
        # trains on the union of the cached training and validation blocks at no extra input cost.
        reuse_blocks = type(self)._dataset is KerasRecommender._dataset and not self.resample_each_epoch
        val_ds = fit_blocks = val_blocks = None
        if reuse_blocks:
            block = default_block_size(batch_size)
            fit_frame = self._training_frame(fit_part)
            fit_blocks = cached_blocks(fit_frame, block_size=block, seed=self.seed,
                                       **self._pipeline_kwargs(items, users, pipeline))
            train_ds = epoch_batches(fit_blocks, len(fit_frame), batch_size=batch_size, seed=self.seed)
            if val_part is not None:
                val_frame = self._validation_frame(val_part)
                val_blocks = cached_blocks(val_frame, block_size=block, seed=self.seed,
                                           **self._pipeline_kwargs(items, users, "tensor"))
                val_ds = epoch_batches(val_blocks, len(val_frame), batch_size=self.validation_batch_size,
                                       shuffle=False)
            history = self._train(None, val_ds, epochs=epochs, dataset=train_ds, **run)
        else:
            if val_part is not None:
                val_ds = self._dataset(self._validation_frame(val_part), items, users,
                                       batch_size=self.validation_batch_size, pipeline="tensor", shuffle=False,
                                       seed=self.seed)
            history = self._train(fit_part, val_ds, epochs=epochs, **run)
        self.best_epoch_ = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else len(history["loss"])
        if refit:
            # The held-out rows told us how long to train; now train that long on all of them
            # (on ML-100K this alone lowers MF's RMSE by ~0.008: the data is that scarce).
            self._reset_training_state(initial)
            all_ds = None
            if reuse_blocks:
                all_ds = epoch_batches(fit_blocks.concatenate(val_blocks), len(fit_frame) + len(val_frame),
                                       batch_size=batch_size, seed=self.seed + 1)
            again = self._train(train, None, epochs=self.best_epoch_, dataset=all_ds, **run)
            history.update({f"refit_{k}": v for k, v in again.items()})
        self.history_ = {k: [float(v) for v in vs] for k, vs in history.items()}
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _reset_training_state(self, weights) -> None:
        """Back to the initial weights with a fresh optimizer state (traced functions are kept)."""
        self.set_weights(weights)
        for var in getattr(self.optimizer, "variables", []):
            var.assign(tf.zeros_like(var))

    def _train(self, frame, val_ds, *, items, users, epochs, batch_size, pipeline, verbose, callbacks, dataset=None,
               **kwargs):
        """Up to ``epochs`` epochs on ``frame`` (or a ready ``dataset``); early stopping (best weights
        kept) when ``val_ds`` is given."""
        if self.resample_each_epoch:
            return self._train_resampling(frame, val_ds, items=items, users=users, epochs=epochs,
                                          batch_size=batch_size, pipeline=pipeline, verbose=verbose,
                                          callbacks=callbacks, **kwargs)
        cbs = list(callbacks or [])
        if val_ds is not None:
            cbs.append(tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                        restore_best_weights=True))
        ds = dataset
        if ds is None:
            ds = self._dataset(self._training_frame(frame), items, users, batch_size=batch_size, pipeline=pipeline,
                               shuffle=True, seed=self.seed)
        return dict(super().fit(ds, validation_data=val_ds, epochs=epochs, verbose=verbose, callbacks=cbs,
                                **kwargs).history)

    def _train_resampling(self, frame, val_ds, *, items, users, epochs, batch_size, pipeline, verbose, callbacks,
                          **kwargs) -> dict:
        """One Keras ``fit`` call per epoch on fresh rows, early stopping on ``val_loss`` by hand."""
        history: dict = {}
        best, best_weights, waited = np.inf, None, 0
        for epoch in range(epochs):
            rows = self._training_frame(frame, epoch)
            ds = self._single_pass_dataset(rows, items, users, batch_size=batch_size, pipeline=pipeline,
                                           seed=self.seed + epoch)
            h = super().fit(ds, validation_data=val_ds, epochs=epoch + 1, initial_epoch=epoch, verbose=verbose,
                            callbacks=callbacks, **kwargs).history
            for k, v in h.items():
                history.setdefault(k, []).extend(v)
            if val_ds is None:
                continue
            current = h["val_loss"][-1]
            if current < best:
                best, best_weights, waited = current, self.get_weights(), 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_weights is not None:
            self.set_weights(best_weights)
        return history

    def restore(self, train: pd.DataFrame, *, items=None, users=None, weights: Optional[str] = None):
        """Rebuild a fitted model made by ``from_config``: side tables, recommender state, weights.

        Args:
          train: the training ratings (catalog, seen items and popularity for ``recommend``).
          items, users: the side tables the model was fitted with (if it uses them).
          weights: a checkpoint written by ``save_weights`` (optional).
        """
        self._check_built()
        self._prepare(train, items, users)
        self._build_all_variables()
        if weights is not None:
            self.load_weights(weights).expect_partial()
        return self

    def _build_all_variables(self) -> None:
        """One forward pass so every layer creates its variables (e.g. before ``load_weights``)."""
        return self.call_ids(tf.constant(self.vocabularies[F.USER_ID][:1]),
                             tf.constant(self.vocabularies[F.ITEM_ID][:1]))

    def _check_built(self) -> None:
        if not self.is_built_:
            raise ConfigError(f"{type(self).__name__} has no layers yet: call fit(train) first, or construct it "
                              "with vocabularies= (e.g. from_config of a fitted model)")

    # -- prediction and the recommender contract ---------------------------------------------------
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)])
    def _call_ids_fn(self, user_id, item_id):
        return self.call_ids(user_id, item_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)])
    def _ranking_fn(self, user_id, item_id):
        return self.ranking_scores(self.features_from_ids(user_id, item_id))

    def predict_ratings(self, user_ids, item_ids, batch_size: int = 65536) -> np.ndarray:
        """The model output for (user, item) pairs of raw ids: float32 numpy array [n].

        Ids may be str, bytes or ints (compared as strings); unknown ids use the OOV rows.
        """
        return self._pairs(self._call_ids_fn, user_ids, item_ids, batch_size)

    def _pairs(self, fn, user_ids, item_ids, batch_size: int) -> np.ndarray:
        self._check_built()
        users, items = _as_str_array(user_ids), _as_str_array(item_ids)
        if len(users) != len(items):
            raise DataError(f"predict_ratings: {len(users)} user ids but {len(items)} item ids")
        batch_size = check_positive_int("batch_size", batch_size)
        out = [fn(tf.constant(users[s:s + batch_size].astype(str)), tf.constant(items[s:s + batch_size].astype(str)))
               .numpy() for s in range(0, len(users), batch_size)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)

    def _score_users(self, user_ids) -> np.ndarray:
        """Ranking scores of every catalog item for known users, a chunk of users at a time."""
        n = len(self.catalog_)
        ids = np.asarray(user_ids, dtype=object)
        chunk = max(1, 262144 // max(n, 1))
        out = []
        for s in range(0, len(ids), chunk):
            part = ids[s:s + chunk]
            scores = self._pairs(self._ranking_fn, np.repeat(part, n), np.tile(self.catalog_, len(part)), 1 << 30)
            out.append(scores.reshape(len(part), n))
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, n))

    def item_vectors(self) -> np.ndarray:  # pragma: no cover - abstract
        """[n_catalog, d] item vectors for ``similar_items`` (cosine), rows in ``catalog_`` order."""
        raise NotImplementedError(f"{type(self).__name__} does not define item vectors")

    def _similar_scores(self, item_positions) -> np.ndarray:
        v = np.asarray(self.item_vectors(), dtype=np.float64)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return v[item_positions] @ v.T

    def _embedding_rows(self, lookup, table, ids) -> np.ndarray:
        """Rows of an embedding ``table`` for raw ``ids`` through ``lookup`` (numpy)."""
        idx = lookup(tf.constant(_as_str_array(ids).astype(str)))
        return tf.gather(table, idx).numpy()
