"""Wide & Deep (Cheng et al., 2016), the workshop seed's design, for rating prediction."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError
from tfrec.models.keras_base import (
    KerasRecommender,
    check_layer_sizes,
    check_non_negative,
    check_positive_int,
    string_lookup,
)
from tfrec.models.layers import side_feature_layers


class WideAndDeep(KerasRecommender, tf.keras.Model):
    """Sum of a wide linear model over sparse crosses and a deep MLP over embeddings.

    Wide part (memorisation): one-hot gender, age code, occupation; multi-hot genres; and the
    crosses gender x genre, age x genre, occupation x genre (hashed into ``cross_buckets``), plus
    one-hot user and item ids -- all into one linear unit.

    Deep part (generalisation): embeddings of user id, item id and every side feature
    concatenated, then an MLP (``layer_sizes``, ReLU, dropout) to one unit.

    Inputs: the feature dict of the pipelines (ids as tf.string [batch]; demographics and
    genres/year when the dataset has them). Output: rating float32 [batch] (wide + deep + mean).

    Args:
      embedding_dim: deep embedding size.
      layer_sizes: MLP hidden sizes.
      dropout: dropout rate in the MLP.
      cross_buckets: hash buckets for the crossed features.
      l2: L2 weight decay on embeddings and the wide weights.
      learning_rate, batch_size, epochs, patience, seed, pipeline, vocabularies: as in
        :class:`~tfrec.models.mf.MatrixFactorization`.

    Example:
      >>> wd = WideAndDeep(layer_sizes=[128, 64]).fit(train, items=items, users=users)  # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID) + F.USER_FEATURES + F.ITEM_FEATURES
    uses_side_features = True

    def __init__(self, embedding_dim: int = 32, layer_sizes: Sequence[int] = (128, 64), dropout: float = 0.2,
                 cross_buckets: int = 2048, l2: float = 1e-5, learning_rate: float = 2e-3, batch_size: int = 4096,
                 epochs: int = 30, patience: int = 2, seed: int = 0, pipeline: str = "tensor",
                 vocabularies: Optional[dict] = None, global_mean: float = 3.5, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.layer_sizes = check_layer_sizes("layer_sizes", layer_sizes)
        self.dropout = check_non_negative("dropout", dropout)
        if self.dropout >= 1:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.cross_buckets = check_positive_int("cross_buckets", cross_buckets)
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
        v = self.vocabularies
        self.user_lookup = string_lookup(v[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(v[F.ITEM_ID], "item_lookup")
        n_u, n_i = len(v[F.USER_ID]) + 1, len(v[F.ITEM_ID]) + 1
        # Wide: every sparse column is an embedding of dim 1 (a linear weight per value).
        self.wide_user = tf.keras.layers.Embedding(n_u, 1, embeddings_initializer="zeros", embeddings_regularizer=reg,
                                                   name="wide_user")
        self.wide_item = tf.keras.layers.Embedding(n_i, 1, embeddings_initializer="zeros", embeddings_regularizer=reg,
                                                   name="wide_item")
        self.wide_side = side_feature_layers(v, 1, self.seed, prefix="wide_")
        self.has_crosses = F.GENRES in v and F.GENDER in v
        if self.has_crosses:
            self.genre_lookup = string_lookup(v[F.GENRES], "cross_genre_lookup")
            self.cross_weight = tf.keras.layers.Embedding(self.cross_buckets, 1, embeddings_initializer="zeros",
                                                          embeddings_regularizer=reg, name="wide_crosses")
        # Deep.
        self.deep_user = tf.keras.layers.Embedding(n_u, self.embedding_dim, embeddings_initializer=init,
                                                   embeddings_regularizer=reg, name="deep_user")
        self.deep_item = tf.keras.layers.Embedding(n_i, self.embedding_dim, embeddings_initializer=init,
                                                   embeddings_regularizer=reg, name="deep_item")
        self.deep_side = side_feature_layers(v, self.embedding_dim, self.seed, prefix="deep_")
        self.mlp = [tf.keras.layers.Dense(s, activation="relu", name=f"mlp_{j}") for j, s in enumerate(self.layer_sizes)]
        self.mlp_dropout = tf.keras.layers.Dropout(self.dropout)
        self.deep_out = tf.keras.layers.Dense(1, name="deep_out")
        self.bias = self.add_weight(name="global_bias", shape=(),
                                    initializer=tf.keras.initializers.Constant(self.global_mean))

    def _crosses(self, features):
        """Hashed ids of (demographic value x each genre) for the three cross families."""
        genres = features[F.GENRES]
        mask = tf.cast(tf.not_equal(genres, F.PAD), tf.float32)
        total = 0.0
        for name in (F.GENDER, F.AGE, F.OCCUPATION):
            value = features[name]
            value = tf.strings.as_string(value) if value.dtype != tf.string else value
            crossed = tf.strings.join([name, "=", tf.broadcast_to(value[:, None], tf.shape(genres)), "&genre=", genres])
            ids = tf.strings.to_hash_bucket_fast(crossed, self.cross_buckets)
            total += tf.reduce_sum(tf.squeeze(self.cross_weight(ids), -1) * mask, axis=1)
        return total

    def call(self, features, training=False):
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        wide = tf.squeeze(self.wide_user(u), -1) + tf.squeeze(self.wide_item(i), -1)
        for name, layer in self.wide_side.items():
            if name in features:
                wide += tf.squeeze(layer(features[name]), -1)
        if self.has_crosses and F.GENDER in features and F.GENRES in features:
            wide += self._crosses(features)
        parts = [self.deep_user(u), self.deep_item(i)]
        parts += [layer(features[name]) for name, layer in self.deep_side.items() if name in features]
        x = tf.concat(parts, axis=-1)
        for dense in self.mlp:
            x = self.mlp_dropout(dense(x), training=training)
        return self.bias + wide + tf.squeeze(self.deep_out(x), -1)

    def get_config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "layer_sizes": list(self.layer_sizes), "dropout": self.dropout,
                "cross_buckets": self.cross_buckets, "l2": self.l2, "global_mean": self.global_mean,
                **self._common_config()}

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.deep_item.embeddings, self.catalog_)

