"""Factorization machine over sparse fields (ids, demographics, genres, year)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.models.checks import check_non_negative, check_positive_int
from tfrec.models.keras_base import KerasRecommender
from tfrec.models.initializers import seeded_embedding
from tfrec.models.layers import side_feature_layers, string_lookup


class FactorizationMachine(KerasRecommender, tf.keras.Model):
    """Second-order factorization machine (Rendle, 2010) over the fields present in the data.

    Each field ``f`` -- user id, item id, and when the data has them gender, age code, occupation,
    zip prefix (user features), genres (the mean of the item's genre vectors: a multi-hot field)
    and release-year bucket (item features) -- has a linear weight ``w_f`` and a factor ``v_f``::

        y = w0 + sum_f w_f + sum_{f<g} <v_f, v_g>
          = w0 + sum_f w_f + 0.5 * sum_k ((sum_f v_fk)^2 - sum_f v_fk^2)     # O(k n), not O(k n^2)

    Fields a dataset lacks (ml-latest has no demographics) are simply absent; which ones the model
    uses is fixed by the vocabularies of its first ``fit`` (``items=``/``users=`` given or not).
    Loss: mean squared error plus, per example, ``l2 * sum_f |v_f|^2 + linear_l2 * sum_f w_f^2``
    (each parameter penalised once per example it appears in, as in libFM's SGD).

    Inputs: feature dict with ``user_id``, ``item_id`` (tf.string [batch]) and, when the model
    uses them, ``gender``, ``occupation``, ``zip`` (tf.string [batch]), ``age``, ``year``
    (tf.int64 [batch]) and ``genres`` (tf.string [batch, MAX_GENRES], padded with ""). Output:
    rating, float32 [batch]. ``call_ids(user_id, item_id)`` looks the features up itself.

    Args:
      embedding_dim: factor size k.
      l2: per-example penalty on the factors.
      linear_l2: per-example penalty on the linear weights.
      learning_rate, batch_size, epochs, patience, seed, pipeline, steps_per_execution,
        vocabularies: as in :class:`~tfrec.models.mf.MatrixFactorization`.
      global_mean: initial w0 (set to the training mean by the first ``fit``).

    Defaults were chosen on a validation split carved from the ML-100K training split: 16 factors
    with ``l2=0.1`` (0.15 was as good, 0.2 and above much worse; 32 factors no better).

    Example:
      >>> fm = FactorizationMachine(embedding_dim=16).fit(train, items=items, users=users)  # doctest: +SKIP
      >>> fm.predict_ratings(["1"], ["50"])                                                 # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID) + F.USER_FEATURES + F.ITEM_FEATURES
    uses_side_features = True

    def __init__(self, embedding_dim: int = 16, l2: float = 0.1, linear_l2: float = 0.01,
                 learning_rate: float = 5e-3, batch_size: int = 1024, epochs: int = 40, patience: int = 2,
                 seed: int = 0, pipeline: str = "tensor", steps_per_execution: int = 32, refit: bool = True,
                 vocabularies: Optional[dict] = None, global_mean: float = 3.5, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.l2 = check_non_negative("l2", l2)
        self.linear_l2 = check_non_negative("linear_l2", linear_l2)
        self.global_mean = float(global_mean)
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline,
                          steps_per_execution=steps_per_execution, refit=refit)

    def _build_layers(self) -> None:
        v = self.vocabularies
        self.user_lookup = string_lookup(v[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(v[F.ITEM_ID], "item_lookup")
        n_u, n_i = len(v[F.USER_ID]) + 1, len(v[F.ITEM_ID]) + 1
        emb = tf.keras.layers.Embedding
        self.user_factor = seeded_embedding(n_u, self.embedding_dim, name="user_factor", seed=self.seed, stddev=0.01)
        self.item_factor = seeded_embedding(n_i, self.embedding_dim, name="item_factor", seed=self.seed, stddev=0.01)
        self.user_weight = emb(n_u, 1, embeddings_initializer="zeros", name="user_weight")
        self.item_weight = emb(n_i, 1, embeddings_initializer="zeros", name="item_weight")
        # Side fields (only those the vocabularies cover): a factor layer and a weight layer each.
        # (A schema.json dataset: its own features, by their specs.)
        side = {k: v[k] for k in (F.GENDER, F.OCCUPATION, F.ZIP, F.GENRES) if k in v and self.uses_side_features}
        specs = self._side_specs()
        self.side_factors = side_feature_layers(side, self.embedding_dim, self.seed, prefix="fm_v_", specs=specs)
        self.side_weights = side_feature_layers(side, 1, self.seed, prefix="fm_w_", specs=specs)
        self.bias = self.add_weight(name="global_bias", shape=(),
                                    initializer=tf.keras.initializers.Constant(self.global_mean))

    @property
    def fields(self) -> list:
        """Names of the fields this model uses, in order."""
        return [F.USER_ID, F.ITEM_ID] + list(self.side_factors)

    def _field_tensors(self, features):
        """(factors [batch, n_fields, k], weights [batch, n_fields]) for a feature dict."""
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        factors = [self.user_factor(u), self.item_factor(i)]
        weights = [self.user_weight(u), self.item_weight(i)]
        for name, layer in self.side_factors.items():
            factors.append(layer(features[name]))
            weights.append(self.side_weights[name](features[name]))
        return tf.stack(factors, axis=1), tf.concat(weights, axis=-1)

    def call(self, features, training=False):
        v, w = self._field_tensors(features)
        pairwise = 0.5 * tf.reduce_sum(tf.square(tf.reduce_sum(v, axis=1)) - tf.reduce_sum(tf.square(v), axis=1), -1)
        if training and (self.l2 or self.linear_l2):
            penalty = self.l2 * tf.reduce_sum(tf.square(v), axis=[1, 2]) + self.linear_l2 * tf.reduce_sum(
                tf.square(w), axis=1)
            self.add_loss(tf.reduce_mean(penalty))
        return self.bias + tf.reduce_sum(w, axis=1) + pairwise

    def get_config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "l2": self.l2, "linear_l2": self.linear_l2,
                "global_mean": self.global_mean, "steps_per_execution": self._steps_per_execution_setting,
                "refit": self.refit, **self._common_config()}

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.item_factor.embeddings, self.catalog_)
