"""Shared machinery for tfrec's Keras models.

:class:`KerasRecommender` is mixed into ``tf.keras.Model`` subclasses (before ``tf.keras.Model``
in the bases). It gives every model:

* sklearn-style construction: hyperparameters only; data-dependent vocabularies are optional
  constructor arguments, so ``get_config()``/``from_config()`` rebuild the full model;
* ``fit(train_dataframe, items=None, users=None, ...)``: fits vocabularies on train, builds the
  layers and the in-graph side tables (user -> demographics, item -> genres/year), carves a
  validation set from train for early stopping, and runs Keras ``fit`` on the tf.data pipeline.
  Given a ``tf.data.Dataset`` (or arrays), ``fit`` is plain Keras ``fit``;
* ``call_ids(user_id, item_id)``: the model's output from raw string ids alone, with features
  looked up in-graph (what an exported ``serving_default`` calls);
* the recommender contract (``recommend``, ``similar_items``, ``score_users``) via
  :class:`~tfrec.models.base.RecommenderMixin`;
* ``restore(train, items, users, weights)`` to rebuild a fitted model from a run folder.

Subclasses implement ``_build_layers()`` (create layers from ``self.vocabularies``), ``call``,
and ``item_vectors()`` (for ``similar_items``); they list the features they read in
``feature_names``.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError
from tfrec.models.base import RecommenderMixin, validate_ratings_frame

# Age codes are a closed set: an IntegerLookup over them (0 = unknown -> OOV).
AGE_VOCAB = list(F.AGE_CODES)
YEAR_BUCKETS = list(range(1920, 2021, 5))


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}") from None
    if not v >= 0.0:
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    return v


def check_layer_sizes(name: str, value) -> list:
    try:
        sizes = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}") from None
    if any(s < 1 for s in sizes):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}")
    return sizes


def string_lookup(values: Sequence[str], name: str) -> tf.keras.layers.StringLookup:
    """Raw strings -> ids, 0 = out of vocabulary (the :class:`tfrec.data.Vocabulary` layout)."""
    return tf.keras.layers.StringLookup(vocabulary=list(values), num_oov_indices=1, mask_token=None, name=name)


def _to_str_list(values) -> list:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


class KerasRecommender(RecommenderMixin):
    """Mixin for tfrec's Keras models (see the module docstring)."""

    #: features ``call`` reads; the pipeline is restricted to these (plus the label).
    feature_names: tuple = (F.USER_ID, F.ITEM_ID)
    #: the label column for training.
    label_key: str = F.RATING
    #: uses demographics / item features (FM, Wide & Deep).
    uses_side_features: bool = False

    # -- construction ------------------------------------------------------------------------------
    def _init_common(self, *, vocabularies: Optional[dict], learning_rate: float, batch_size: int, epochs: int,
                     patience: int, seed: int, pipeline: str) -> None:
        self.learning_rate = check_non_negative("learning_rate", learning_rate)
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {learning_rate!r}")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.epochs = check_positive_int("epochs", epochs)
        self.patience = check_positive_int("patience", patience)
        self.seed = int(seed)
        if pipeline not in ("tensor", "generator"):
            raise ConfigError(f"pipeline must be 'tensor' or 'generator', got {pipeline!r}")
        self.pipeline = pipeline
        self.vocabularies = {k: list(v) for k, v in vocabularies.items()} if vocabularies else None
        self._side = None
        if self.vocabularies:
            self._build_layers()

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
    def from_config(cls, config: dict):
        return cls(**config)

    def get_params(self) -> dict:
        """Hyperparameters (the config without vocabularies)."""
        return {k: v for k, v in self.get_config().items() if k != "vocabularies"}

    def _build_layers(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- side tables: raw ids -> features, in-graph ------------------------------------------------
    def _set_side_tables(self, items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> None:
        """Per-vocabulary-index feature tensors so ``call_ids`` can look features up in-graph."""
        side = {}
        user_vocab = self.vocabularies[F.USER_ID]
        item_vocab = self.vocabularies[F.ITEM_ID]
        if users is not None:
            ut = F.user_feature_table(users).reindex(user_vocab)
            side[F.GENDER] = tf.constant([""] + ut[F.GENDER].fillna("").tolist(), dtype=tf.string)
            side[F.AGE] = tf.constant([0] + ut[F.AGE].fillna(0).astype(np.int64).tolist(), dtype=tf.int64)
            side[F.OCCUPATION] = tf.constant([""] + ut[F.OCCUPATION].fillna("").tolist(), dtype=tf.string)
            side[F.ZIP] = tf.constant([""] + ut[F.ZIP].fillna("").tolist(), dtype=tf.string)
        if items is not None:
            it = F.item_feature_table(items).reindex(item_vocab)
            empty = [F.PAD] * F.MAX_GENRES
            genres = [empty] + [g if isinstance(g, list) else empty for g in it[F.GENRES]]
            side[F.GENRES] = tf.constant(genres, dtype=tf.string)
            side[F.YEAR] = tf.constant([0] + it[F.YEAR].fillna(0).astype(np.int64).tolist(), dtype=tf.int64)
        self._side = side
        self._side_items = items is not None
        self._side_users = users is not None

    def features_from_ids(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict:
        """The full feature dict for raw ids (strings [B]), features gathered in-graph."""
        feats = {F.USER_ID: user_id, F.ITEM_ID: item_id}
        side = self._side or {}
        if F.GENDER in side:
            u = self._user_index(user_id)
            for name in (F.GENDER, F.AGE, F.OCCUPATION, F.ZIP):
                feats[name] = tf.gather(side[name], u)
        if F.GENRES in side:
            i = self._item_index(item_id)
            feats[F.GENRES] = tf.gather(side[F.GENRES], i)
            feats[F.YEAR] = tf.gather(side[F.YEAR], i)
        return feats

    def _user_index(self, user_id):
        return self._side_user_lookup(user_id)

    def _item_index(self, item_id):
        return self._side_item_lookup(item_id)

    def _make_side_lookups(self) -> None:
        # Separate from the model's own lookups so models without side features stay unchanged.
        self._side_user_lookup = string_lookup(self.vocabularies[F.USER_ID], "side_user_lookup")
        self._side_item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "side_item_lookup")

    def call_ids(self, user_id: tf.Tensor, item_id: tf.Tensor) -> tf.Tensor:
        """Model output ([B]) from raw string ids alone."""
        return tf.reshape(self(self.features_from_ids(user_id, item_id), training=False), [-1])

    # -- training ----------------------------------------------------------------------------------
    def fit(self, x=None, y=None, *, items: Optional[pd.DataFrame] = None, users: Optional[pd.DataFrame] = None,
            validation_data=None, validation_fraction: float = 0.1, epochs: Optional[int] = None,
            batch_size: Optional[int] = None, pipeline: Optional[str] = None, verbose=1, callbacks=None, **kwargs):
        """Fit on a ratings DataFrame (tfrec) or on a tf.data.Dataset / arrays (plain Keras)."""
        if not isinstance(x, pd.DataFrame):
            return tf.keras.Model.fit(self, x, y, validation_data=validation_data, epochs=epochs or 1,
                                      batch_size=batch_size, verbose=verbose, callbacks=callbacks, **kwargs)
        return self._fit_frame(x, items=items, users=users, validation_data=validation_data,
                               validation_fraction=validation_fraction, epochs=epochs or self.epochs,
                               batch_size=batch_size or self.batch_size, pipeline=pipeline or self.pipeline,
                               verbose=verbose, callbacks=callbacks)

    def _prepare(self, train: pd.DataFrame, items, users) -> None:
        """Vocabularies, layers, side tables and recommender state from the training frame."""
        from tfrec.data.vocab import fit_vocabularies

        self._remember_training_data(train)
        if self.vocabularies is None:
            vocabs = fit_vocabularies(train, items=items if self.uses_side_features else None,
                                      users=users if self.uses_side_features else None)
            self.vocabularies = {k: v.values for k, v in vocabs.items()}
            self._build_layers()
        self._make_side_lookups()
        self._set_side_tables(items if self.uses_side_features else None,
                              users if self.uses_side_features else None)

    def _training_frame(self, train: pd.DataFrame) -> pd.DataFrame:
        """The rows Keras trains on (NeuMF's implicit objective adds sampled negatives)."""
        return train

    def _feature_subset(self) -> list:
        names = list(self.feature_names)
        side = self._side or {}
        return [n for n in names if n in (F.USER_ID, F.ITEM_ID) or n in side]

    def _dataset(self, frame, items, users, *, batch_size, pipeline, shuffle, seed):
        from tfrec.data.pipelines import make_dataset

        use_items = items if (self.uses_side_features and items is not None) else None
        use_users = users if (self.uses_side_features and users is not None) else None
        return make_dataset(frame, items=use_items, users=use_users, pipeline=pipeline, batch_size=batch_size,
                            shuffle=shuffle, seed=seed, label_key=self.label_key,
                            features=self._feature_subset() + [self.label_key])

    def _compile_default(self) -> None:
        self.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate), loss=self._default_loss(),
                     metrics=self._default_metrics(), steps_per_execution=self._default_steps_per_execution())

    def _default_loss(self):
        return tf.keras.losses.MeanSquaredError()

    def _default_metrics(self):
        return [tf.keras.metrics.RootMeanSquaredError(name="rmse")]

    def _default_steps_per_execution(self) -> int:
        # Tiny models are dominated by Keras' per-step Python overhead: run several steps per call.
        return 16

    def _fit_frame(self, train, *, items, users, validation_data, validation_fraction, epochs, batch_size, pipeline,
                   verbose, callbacks):
        validate_ratings_frame(train, need_rating=self.label_key == F.RATING)
        tf.keras.utils.set_random_seed(self.seed)
        if validation_data is None and validation_fraction:
            from tfrec.data.splits import random_split

            fit_part, val_part = random_split(train, test_fraction=validation_fraction, seed=self.seed)
        else:
            fit_part, val_part = train, validation_data
        # Vocabularies and recommender state come from the whole training split (validation
        # rows are training data the model is not fitted on, not held-out data).
        self._prepare(train, items, users)
        if not getattr(self, "_is_compiled", False):
            self._compile_default()
        fit_frame = self._training_frame(fit_part)
        ds = self._dataset(fit_frame, items, users, batch_size=batch_size, pipeline=pipeline, shuffle=True,
                           seed=self.seed)
        val_ds = None
        cbs = list(callbacks or [])
        if val_part is not None and len(val_part):
            val_frame = self._validation_frame(val_part)
            val_ds = self._dataset(val_frame, items, users, batch_size=8192, pipeline="tensor", shuffle=False,
                                   seed=self.seed)
            cbs.append(tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                        restore_best_weights=True))
        t0 = time.perf_counter()
        history = tf.keras.Model.fit(self, ds, validation_data=val_ds, epochs=epochs, verbose=verbose, callbacks=cbs)
        self.fit_seconds_ = time.perf_counter() - t0
        self.history_ = history.history
        return self

    def _validation_frame(self, val: pd.DataFrame) -> pd.DataFrame:
        return val

    def restore(self, train: pd.DataFrame, *, items=None, users=None, weights: Optional[str] = None):
        """Rebuild a fitted model (from ``from_config``) with its side tables and weights."""
        if self.vocabularies is None:
            raise ConfigError("restore needs a model built from a config that includes its vocabularies")
        self._prepare(train, items, users)
        # One call builds every layer so the checkpoint's variables have somewhere to go.
        self.call_ids(tf.constant([self.vocabularies[F.USER_ID][0]]), tf.constant([self.vocabularies[F.ITEM_ID][0]]))
        if weights is not None:
            self.load_weights(weights).expect_partial()
        return self

    # -- prediction and the recommender contract ---------------------------------------------------
    @tf.function(reduce_retracing=True)
    def _call_ids_fn(self, user_id, item_id):
        return self.call_ids(user_id, item_id)

    def predict_ratings(self, user_ids, item_ids, batch_size: int = 65536) -> np.ndarray:
        """Model output for (user, item) pairs of raw ids, as a float numpy array [n]."""
        self._check_fitted()
        users = np.asarray(_to_str_list(np.asarray(user_ids, dtype=object).reshape(-1)), dtype=object)
        items = np.asarray(_to_str_list(np.asarray(item_ids, dtype=object).reshape(-1)), dtype=object)
        if len(users) != len(items):
            raise ConfigError(f"predict_ratings: {len(users)} user ids but {len(items)} item ids")
        out = []
        for s in range(0, len(users), batch_size):
            out.append(self._call_ids_fn(tf.constant(users[s:s + batch_size].astype(str)),
                                         tf.constant(items[s:s + batch_size].astype(str))).numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _score_users(self, user_ids) -> np.ndarray:
        n = len(self.catalog_)
        users = np.repeat(np.asarray(user_ids, dtype=object), n)
        items = np.tile(self.catalog_, len(user_ids))
        return self.predict_ratings(users, items).reshape(len(user_ids), n).astype(np.float64)

    def item_vectors(self) -> np.ndarray:  # pragma: no cover - abstract
        """[n_catalog, d] vectors for ``similar_items`` (cosine)."""
        raise NotImplementedError

    def _similar_scores(self, item_positions) -> np.ndarray:
        v = np.asarray(self.item_vectors(), dtype=np.float64)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return v[item_positions] @ v.T

    def _embedding_rows(self, lookup, table, ids) -> np.ndarray:
        idx = lookup(tf.constant(np.asarray(ids, dtype=object).astype(str)))
        return tf.gather(table, idx).numpy()
