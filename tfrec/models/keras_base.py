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
  non-trainable variables (:class:`~tfrec.models.side_tables.SideTablesMixin`), so
  ``call_ids(user_id, item_id)`` computes the model from raw string ids alone with the features
  gathered in-graph (what an exported ``serving_default`` calls), and so
  ``save_weights``/``load_weights`` carry them;
* ``predict_ratings(user_ids, item_ids)`` (numpy in, numpy out) and the recommender contract
  (``recommend``, ``similar_items``, ``score_users``) of :class:`~tfrec.models.base.RecommenderMixin`:
  every catalog item is scored for a chunk of users at a time, and ``similar_items`` is the cosine
  similarity of ``item_vectors()``.

Subclasses implement ``_build_layers()`` (create the layers from ``self.vocabularies``), ``call``
and ``item_vectors()``, list the features ``call`` reads in ``feature_names``, and call
``_init_common(...)`` at the end of ``__init__`` and ``_common_config()`` in ``get_config``.

Training speed. Tiny models such as MF spend most of their time in per-step and per-example
overhead, not arithmetic. So (a) training batches are shuffled in blocks
(:func:`tfrec.models.batching.shuffled_batches`):
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

from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError, DataError
from tfrec.models.base import RecommenderMixin
from tfrec.models.checks import (
    as_str_array,
    check_positive,
    check_positive_int,
    check_seed,
    normalise_vocabularies,
)
from tfrec.models.keras_fit import PIPELINES, KerasFitMixin
from tfrec.models.layers import Untracked
from tfrec.models.side_tables import SideTablesMixin

# -- the mixin ---------------------------------------------------------------------------------------
class KerasRecommender(KerasFitMixin, SideTablesMixin, RecommenderMixin):
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
        self._vocabularies = Untracked(normalise_vocabularies(vocabularies))
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
            # A schema.json dataset's fitted side-feature specs (types, numeric statistics, widths).
            **({"side_features": self.side_features} if self.side_features is not None else {}),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """Rebuild the model (layers and variables too when the config has vocabularies)."""
        config = dict(config)
        for key in ("name", "trainable", "dtype"):  # Keras' own keys, if a caller merged them in
            config.pop(key, None)
        side = config.pop("side_features", None)
        if side is None:
            return cls(**config)
        # Side-feature specs are data, like the vocabularies: set both, then build.
        vocabularies = config.pop("vocabularies", None)
        model = cls(**config)
        model._side_features = Untracked(dict(side))
        if vocabularies is not None:
            model._vocabularies = Untracked(normalise_vocabularies(vocabularies))
            model._build()
        return model

    def get_params(self) -> dict:
        """Hyperparameters (the config without vocabularies and side-feature specs)."""
        return {k: v for k, v in self.get_config().items() if k not in ("vocabularies", "side_features")}

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
        users, items = as_str_array(user_ids), as_str_array(item_ids)
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
        idx = lookup(tf.constant(as_str_array(ids).astype(str)))
        return tf.gather(table, idx).numpy()
