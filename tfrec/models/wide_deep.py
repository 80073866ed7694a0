"""Wide & Deep (Cheng et al., 2016), the workshop seed's design, for rating prediction."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.models.checks import check_fraction, check_layer_sizes, check_non_negative, check_positive_int
from tfrec.models.keras_base import KerasRecommender
from tfrec.models.initializers import glorot_uniform, seeded_embedding
from tfrec.models.layers import side_feature_layers, string_lookup

#: the demographic fields crossed with every genre of the item in the wide part.
CROSSED_WITH_GENRE = (F.GENDER, F.AGE, F.OCCUPATION)


class WideAndDeep(KerasRecommender, tf.keras.Model):
    """Sum of a wide linear model over sparse features and crosses and a deep MLP over embeddings.

    Wide part (memorisation; a linear model, one weight per feature value): one-hot user id,
    item id, gender, age code, occupation, zip prefix and year bucket; the multi-hot genres of
    the item (mean of their weights); and the crosses gender x genre, age x genre and occupation x
    genre (``"gender=F&genre=Drama"`` ...), hashed into ``cross_buckets`` weights and summed over
    the item's genres. Deep part (generalisation): embeddings of user id, item id and every side
    feature, concatenated, then an MLP (``layer_sizes``, ReLU, dropout) to one unit. The output
    is ``global_mean + wide + deep`` (summed logits, as in the paper and the workshop design).
    Features a dataset lacks are left out (no crosses without demographics). On your own data
    (a schema.json dataset) the side features are the schema's, each typed by it (categorical and
    multi_categorical embeddings, standardised numeric values with a missing indicator, pooled
    text tokens; :func:`tfrec.models.layers.schema_feature_layers`), and there are no crosses.

    Loss: mean squared error plus, per example, ``l2`` times the squared norms of the example's
    deep embeddings and ``wide_l2`` times its squared wide weights (each parameter penalised once
    per example it appears in).

    Inputs: the feature dict of the pipelines -- ``user_id``, ``item_id`` (tf.string [batch]) and,
    when the model uses them, ``gender``, ``occupation``, ``zip`` (tf.string [batch]), ``age``,
    ``year`` (tf.int64 [batch]), ``genres`` (tf.string [batch, MAX_GENRES], padded with "").
    Output: rating, float32 [batch]. ``call_ids(user_id, item_id)`` looks the features up itself.

    Args:
      embedding_dim: deep embedding size (ids and features).
      layer_sizes: MLP hidden sizes.
      dropout: dropout rate after each hidden layer.
      cross_buckets: hash buckets for the crossed features.
      l2: per-example penalty on the deep embeddings.
      wide_l2: per-example penalty on the wide weights.
      learning_rate, batch_size, epochs, patience, seed, pipeline, steps_per_execution, refit,
        vocabularies: as in :class:`~tfrec.models.mf.MatrixFactorization`.
      global_mean: output offset (set to the training mean by the first ``fit``).

    Defaults were chosen on a validation split carved from the ML-100K training split: the deep
    part overfits within a few epochs, so small (8-wide) embeddings with ``l2=0.3`` and learning
    rate 1e-3 did best; dropout, wider embeddings and the wide penalty made little difference. An
    MLP over concatenated embeddings models user-item interactions less directly than a dot
    product, and on ML-100K this model stays behind MF and FM.

    Example:
      >>> wd = WideAndDeep(layer_sizes=[64, 32]).fit(train, items=items, users=users)  # doctest: +SKIP
      >>> wd.predict_ratings(["1"], ["50"])                                            # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID) + F.USER_FEATURES + F.ITEM_FEATURES
    uses_side_features = True

    def __init__(self, embedding_dim: int = 8, layer_sizes: Sequence[int] = (64, 32), dropout: float = 0.1,
                 cross_buckets: int = 4096, l2: float = 0.3, wide_l2: float = 0.01, learning_rate: float = 1e-3,
                 batch_size: int = 1024, epochs: int = 40, patience: int = 2, seed: int = 0,
                 pipeline: str = "tensor", steps_per_execution: int = 32, refit: bool = True,
                 vocabularies: Optional[dict] = None, global_mean: float = 3.5, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.layer_sizes = check_layer_sizes("layer_sizes", layer_sizes)
        self.dropout = check_fraction("dropout", dropout)
        self.cross_buckets = check_positive_int("cross_buckets", cross_buckets)
        self.l2 = check_non_negative("l2", l2)
        self.wide_l2 = check_non_negative("wide_l2", wide_l2)
        self.global_mean = float(global_mean)
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline,
                          steps_per_execution=steps_per_execution, refit=refit)

    def _build_layers(self) -> None:
        v = self.vocabularies
        emb = tf.keras.layers.Embedding
        self.user_lookup = string_lookup(v[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(v[F.ITEM_ID], "item_lookup")
        n_u, n_i = len(v[F.USER_ID]) + 1, len(v[F.ITEM_ID]) + 1
        side = {k: v[k] for k in (F.GENDER, F.OCCUPATION, F.ZIP, F.GENRES) if k in v}
        # Wide: a weight per feature value is an embedding of width 1.
        self.wide_user = emb(n_u, 1, embeddings_initializer="zeros", name="wide_user")
        self.wide_item = emb(n_i, 1, embeddings_initializer="zeros", name="wide_item")
        specs = self._side_specs()  # a schema.json dataset: its own features, by their specs
        self.wide_side = side_feature_layers(side, 1, self.seed, prefix="wide_", specs=specs)
        self.has_crosses = F.GENRES in v and F.GENDER in v and not specs
        if self.has_crosses:
            self.wide_crosses = emb(self.cross_buckets, 1, embeddings_initializer="zeros", name="wide_crosses")
        # Deep: embeddings of everything, concatenated, through the MLP.
        self.deep_user = seeded_embedding(n_u, self.embedding_dim, name="deep_user", seed=self.seed, stddev=0.01)
        self.deep_item = seeded_embedding(n_i, self.embedding_dim, name="deep_item", seed=self.seed, stddev=0.01)
        self.deep_side = side_feature_layers(side, self.embedding_dim, self.seed, prefix="deep_", specs=specs)
        self.hidden = [tf.keras.layers.Dense(s, activation="relu", name=f"hidden_{j}",
                                             kernel_initializer=glorot_uniform(self.seed, f"hidden_{j}"))
                       for j, s in enumerate(self.layer_sizes)]
        self.hidden_dropout = [tf.keras.layers.Dropout(self.dropout, seed=self.seed + j)
                               for j in range(len(self.layer_sizes))]
        self.deep_out = tf.keras.layers.Dense(1, name="deep_out", kernel_initializer="zeros")
        self.bias = self.add_weight(name="global_bias", shape=(),
                                    initializer=tf.keras.initializers.Constant(self.global_mean))

    def cross_ids(self, features) -> tf.Tensor:
        """Hashed ids [batch, len(CROSSED_WITH_GENRE), MAX_GENRES] of the demographic x genre crosses."""
        genres = features[F.GENRES]
        ids = []
        for name in CROSSED_WITH_GENRE:
            value = features[name]
            value = value if value.dtype == tf.string else tf.strings.as_string(value)
            value = tf.broadcast_to(tf.expand_dims(value, -1), tf.shape(genres))
            crossed = tf.strings.join([f"{name}=", value, "&genre=", genres])
            ids.append(tf.strings.to_hash_bucket_fast(crossed, self.cross_buckets))
        return tf.stack(ids, axis=1)

    def _wide(self, features, u, i):
        """(wide logit [batch], squared wide weights per example [batch])."""
        weights = [self.wide_user(u)[:, 0], self.wide_item(i)[:, 0]]
        weights += [layer(features[name])[:, 0] for name, layer in self.wide_side.items()]
        logit = tf.add_n(weights)
        sq = tf.add_n([tf.square(w) for w in weights])
        if self.has_crosses:
            mask = tf.cast(tf.not_equal(features[F.GENRES], F.PAD), tf.float32)[:, None, :]  # [b, 1, G]
            w = self.wide_crosses(self.cross_ids(features))[..., 0] * mask                 # [b, C, G]
            logit += tf.reduce_sum(w, axis=[1, 2])
            sq += tf.reduce_sum(tf.square(w), axis=[1, 2])
        return logit, sq

    def call(self, features, training=False):
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        wide, wide_sq = self._wide(features, u, i)
        parts = [self.deep_user(u), self.deep_item(i)]
        parts += [layer(features[name]) for name, layer in self.deep_side.items()]
        x = tf.concat(parts, axis=-1)
        for dense, drop in zip(self.hidden, self.hidden_dropout):
            x = drop(dense(x), training=training)
        if training and (self.l2 or self.wide_l2):
            deep_sq = tf.add_n([tf.reduce_sum(tf.square(p), -1) for p in parts])
            self.add_loss(tf.reduce_mean(self.l2 * deep_sq + self.wide_l2 * wide_sq))
        return self.bias + wide + self.deep_out(x)[:, 0]

    def get_config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "layer_sizes": list(self.layer_sizes), "dropout": self.dropout,
                "cross_buckets": self.cross_buckets, "l2": self.l2, "wide_l2": self.wide_l2,
                "global_mean": self.global_mean, "steps_per_execution": self._steps_per_execution_setting,
                "refit": self.refit, **self._common_config()}

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.deep_item.embeddings, self.catalog_)
