"""Factorization machine over sparse fields (ids, demographics, genres, year)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.models.keras_base import KerasRecommender, check_non_negative, check_positive_int, string_lookup
from tfrec.models.layers import side_feature_layers


class FactorizationMachine(KerasRecommender, tf.keras.Model):
    """Second-order factorization machine (Rendle, 2010) over the fields present in the data.

    ``y = w0 + sum_f w_f + sum_{f<g} <v_f, v_g>`` where each field ``f`` (user id, item id, gender,
    age code, occupation, zip prefix, genres (mean of genre vectors), year bucket) has a scalar
    weight ``w_f`` and a factor ``v_f``; the pairwise sum uses the O(k n) identity
    ``0.5 * ((sum v)^2 - sum v^2)``. Fields a dataset lacks (no demographics) are simply absent.

    Inputs: feature dict (``user_id``, ``item_id`` tf.string [batch]; optional ``gender``,
    ``occupation``, ``zip`` tf.string, ``age``, ``year`` tf.int64 [batch], ``genres`` tf.string
    [batch, MAX_GENRES]). Output: rating float32 [batch].

    Args:
      embedding_dim: factor size k.
      l2: L2 weight decay on factors and weights.
      learning_rate, batch_size, epochs, patience, seed, pipeline, vocabularies: as in
        :class:`~tfrec.models.mf.MatrixFactorization`.

    Example:
      >>> fm = FactorizationMachine(embedding_dim=16).fit(train, items=items, users=users)  # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID) + F.USER_FEATURES + F.ITEM_FEATURES
    uses_side_features = True

    def __init__(self, embedding_dim: int = 32, l2: float = 1e-4, learning_rate: float = 3e-3,
                 batch_size: int = 4096, epochs: int = 40, patience: int = 2, seed: int = 0,
                 pipeline: str = "tensor", vocabularies: Optional[dict] = None, global_mean: float = 3.5, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.l2 = check_non_negative("l2", l2)
        self.global_mean = float(global_mean)
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline)

    def _prepare(self, train, items, users) -> None:
        if self.vocabularies is None and "rating" in train:
            self.global_mean = float(train["rating"].mean())
        super()._prepare(train, items, users)

    def _build_layers(self) -> None:
        reg = tf.keras.regularizers.l2(self.l2) if self.l2 else None
        init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=self.seed)
        self.user_lookup = string_lookup(self.vocabularies[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "item_lookup")
        n_u, n_i = len(self.vocabularies[F.USER_ID]) + 1, len(self.vocabularies[F.ITEM_ID]) + 1
        self.user_factor = tf.keras.layers.Embedding(n_u, self.embedding_dim, embeddings_initializer=init,
                                                     embeddings_regularizer=reg, name="user_factor")
        self.item_factor = tf.keras.layers.Embedding(n_i, self.embedding_dim, embeddings_initializer=init,
                                                     embeddings_regularizer=reg, name="item_factor")
        self.user_weight = tf.keras.layers.Embedding(n_u, 1, embeddings_initializer="zeros",
                                                     embeddings_regularizer=reg, name="user_weight")
        self.item_weight = tf.keras.layers.Embedding(n_i, 1, embeddings_initializer="zeros",
                                                     embeddings_regularizer=reg, name="item_weight")
        # Side fields: a factor (dim k) and a linear weight (a dense map of the same embedding).
        self.side_factors = side_feature_layers(self.vocabularies, self.embedding_dim, self.seed, prefix="fm_")
        self.side_weights = {name: tf.keras.layers.Dense(1, use_bias=False, kernel_regularizer=reg, name=f"w_{name}")
                             for name in self.side_factors}
        self.bias = self.add_weight(name="global_bias", shape=(),
                                    initializer=tf.keras.initializers.Constant(self.global_mean))

    def _fields(self, features):
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        factors = [self.user_factor(u), self.item_factor(i)]
        linear = [self.user_weight(u), self.item_weight(i)]
        for name, layer in self.side_factors.items():
            if name in features:
                v = layer(features[name])
                factors.append(v)
                linear.append(self.side_weights[name](v))
        return factors, linear

    def call(self, features, training=False):
        factors, linear = self._fields(features)
        v = tf.stack(factors, axis=1)  # [batch, fields, k]
        pairwise = 0.5 * tf.reduce_sum(tf.square(tf.reduce_sum(v, axis=1)) - tf.reduce_sum(tf.square(v), axis=1), -1)
        return self.bias + tf.add_n([tf.squeeze(w, -1) for w in linear]) + pairwise

    def get_config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "l2": self.l2, "global_mean": self.global_mean,
                **self._common_config()}

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.item_factor.embeddings, self.catalog_)
