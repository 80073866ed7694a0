"""Matrix factorization with biases (the Indaba practical, seed 004)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError
from tfrec.models.keras_base import KerasRecommender, check_non_negative, check_positive_int, string_lookup


class MatrixFactorization(KerasRecommender, tf.keras.Model):
    """Predicts a rating as ``mu + b_u + b_i + <p_u, q_i>``, optionally squashed into a range.

    With ``rating_range=(lo, hi)`` the output is ``lo + (hi - lo) * sigmoid(raw)``, which keeps
    predictions inside the rating scale (the Indaba practical used (0, 5.5); (0.5, 5.5) leaves
    room around 1 and 5 stars).

    Inputs: a feature dict with ``user_id`` and ``item_id`` (tf.string, [batch]); other features are
    ignored. Output: rating, float32 [batch].

    Args:
      embedding_dim: size of p_u and q_i.
      l2: L2 penalty on the embeddings and biases of each example's user and item (added to the
        batch loss as ``l2 * mean(|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)``).
      use_bias: learn b_u, b_i (mu is always learned).
      rating_range: ``(lo, hi)`` for sigmoid squashing, or None for a plain linear output.
      learning_rate, batch_size, epochs, patience, seed, pipeline: training settings used by
        ``fit(dataframe)`` (early stopping on a validation set carved from train).
      vocabularies: ``{"user_id": [...], "item_id": [...]}`` (set by ``fit``; in the config so
        ``from_config`` rebuilds the model).

    Bias interpretation: :meth:`item_biases`, :meth:`user_biases` and :meth:`top_items_by_bias`
    list what the model thinks of items regardless of who watches them.

    Example:
      >>> model = MatrixFactorization(embedding_dim=32).fit(train)        # doctest: +SKIP
      >>> model.predict_ratings(["1"], ["50"])                             # doctest: +SKIP
      >>> model.top_items_by_bias(n=5)                                     # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID)

    def __init__(self, embedding_dim: int = 128, l2: float = 0.05, use_bias: bool = True,
                 rating_range: Optional[Sequence[float]] = (0.5, 5.5), learning_rate: float = 5e-3,
                 batch_size: int = 4096, epochs: int = 40, patience: int = 2, seed: int = 0,
                 pipeline: str = "tensor", vocabularies: Optional[dict] = None, global_mean: float = 3.5,
                 **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.l2 = check_non_negative("l2", l2)
        self.use_bias = bool(use_bias)
        if rating_range is not None:
            try:
                lo, hi = (float(v) for v in rating_range)
            except (TypeError, ValueError):
                raise ConfigError(f"rating_range must be (low, high) or None, got {rating_range!r}") from None
            if not lo < hi:
                raise ConfigError(f"rating_range must have low < high, got {rating_range!r}")
            rating_range = [lo, hi]
        self.rating_range = rating_range
        self.global_mean = float(global_mean)
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline)

    def _build_layers(self) -> None:
        # L2 is applied per example to the rows a batch touches (see call), the classic SGD-MF
        # regularisation: a Keras embeddings_regularizer would shrink every row every step and
        # crush rarely rated items.
        reg = None
        n_users = len(self.vocabularies[F.USER_ID]) + 1
        n_items = len(self.vocabularies[F.ITEM_ID]) + 1
        self.user_lookup = string_lookup(self.vocabularies[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "item_lookup")
        init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=self.seed)
        self.user_embedding = tf.keras.layers.Embedding(n_users, self.embedding_dim, embeddings_initializer=init,
                                                        embeddings_regularizer=reg, name="user_embedding")
        self.item_embedding = tf.keras.layers.Embedding(n_items, self.embedding_dim, embeddings_initializer=init,
                                                        embeddings_regularizer=reg, name="item_embedding")
        if self.use_bias:
            self.user_bias = tf.keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros",
                                                       embeddings_regularizer=reg, name="user_bias")
            self.item_bias = tf.keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros",
                                                       embeddings_regularizer=reg, name="item_bias")
        if self.rating_range is not None:
            lo, hi = self.rating_range
            p = np.clip((self.global_mean - lo) / (hi - lo), 1e-3, 1 - 1e-3)
            start = float(np.log(p / (1 - p)))
        else:
            start = self.global_mean
        self.global_bias = self.add_weight(name="global_bias", shape=(), initializer=tf.keras.initializers.Constant(start))

    def _prepare(self, train: pd.DataFrame, items, users) -> None:
        if self.vocabularies is None and "rating" in train:
            self.global_mean = float(train["rating"].mean())
        super()._prepare(train, items, users)

    def call(self, features, training=False):
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        pu, qi = self.user_embedding(u), self.item_embedding(i)
        raw = tf.reduce_sum(pu * qi, axis=-1) + self.global_bias
        penalty = tf.reduce_sum(tf.square(pu), -1) + tf.reduce_sum(tf.square(qi), -1)
        if self.use_bias:
            bu, bi = tf.squeeze(self.user_bias(u), -1), tf.squeeze(self.item_bias(i), -1)
            raw += bu + bi
            penalty += tf.square(bu) + tf.square(bi)
        if training and self.l2:
            self.add_loss(self.l2 * tf.reduce_mean(penalty))
        if self.rating_range is not None:
            lo, hi = self.rating_range
            return lo + (hi - lo) * tf.sigmoid(raw)
        return raw

    def get_config(self) -> dict:
        return {
            "embedding_dim": self.embedding_dim,
            "l2": self.l2,
            "use_bias": self.use_bias,
            "rating_range": list(self.rating_range) if self.rating_range is not None else None,
            "global_mean": self.global_mean,
            **self._common_config(),
        }

    # -- fast scoring: a matmul instead of per-pair calls -------------------------------------------
    def _score_users(self, user_ids) -> np.ndarray:
        u = self.user_lookup(tf.constant(np.asarray(user_ids, dtype=object).astype(str)))
        i = self.item_lookup(tf.constant(self.catalog_.astype(str)))
        raw = tf.matmul(self.user_embedding(u), self.item_embedding(i), transpose_b=True) + self.global_bias
        if self.use_bias:
            raw += self.user_bias(u) + tf.transpose(self.item_bias(i))
        if self.rating_range is not None:
            lo, hi = self.rating_range
            raw = lo + (hi - lo) * tf.sigmoid(raw)
        return raw.numpy().astype(np.float64)

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.item_embedding.embeddings, self.catalog_)

    # -- bias interpretation -------------------------------------------------------------------------
    def item_biases(self) -> pd.DataFrame:
        """Learned item biases b_i for the catalog, highest first (item_id, bias)."""
        self._check_fitted()
        if not self.use_bias:
            raise ConfigError("this MatrixFactorization was built with use_bias=False")
        b = self._embedding_rows(self.item_lookup, self.item_bias.embeddings, self.catalog_).reshape(-1)
        return pd.DataFrame({"item_id": self.catalog_, "bias": b}).sort_values(
            ["bias", "item_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)

    def user_biases(self) -> pd.DataFrame:
        """Learned user biases b_u, highest first (user_id, bias): generous vs harsh raters."""
        self._check_fitted()
        if not self.use_bias:
            raise ConfigError("this MatrixFactorization was built with use_bias=False")
        users = np.asarray(list(self.user_index_), dtype=object)
        b = self._embedding_rows(self.user_lookup, self.user_bias.embeddings, users).reshape(-1)
        return pd.DataFrame({"user_id": users, "bias": b}).sort_values(
            ["bias", "user_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)

    def top_items_by_bias(self, n: int = 10, worst: bool = False, min_ratings: int = 0) -> pd.DataFrame:
        """The ``n`` items with the highest (or, ``worst=True``, lowest) bias.

        ``min_ratings`` skips items with fewer training ratings (their biases are mostly prior).
        """
        n = check_positive_int("n", n)
        frame = self.item_biases()
        if min_ratings:
            counts = dict(zip(self.catalog_, self.popularity_))
            frame = frame[frame["item_id"].map(counts) >= min_ratings]
        frame = frame.iloc[::-1] if worst else frame
        return frame.head(n).reset_index(drop=True)
