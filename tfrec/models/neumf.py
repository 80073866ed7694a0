"""Neural matrix factorization (He et al., 2017): GMF and MLP towers fused."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError
from tfrec.models.checks import check_layer_sizes, check_non_negative, check_positive_int
from tfrec.models.keras_base import KerasRecommender
from tfrec.models.initializers import glorot_uniform, seeded_embedding
from tfrec.models.layers import string_lookup

OBJECTIVES = ("implicit", "rating")
NEGATIVE_SAMPLING = ("uniform", "popularity")
LABEL = "label"


class NeuMF(KerasRecommender, tf.keras.Model):
    """NeuMF: ``h^T [p_u * q_i ; MLP([p'_u ; q'_i])]`` with separate GMF and MLP embeddings.

    The GMF tower is the elementwise product of ``embedding_dim``-sized user and item vectors; the
    MLP tower concatenates its own user and item vectors (``layer_sizes[0] // 2`` each) and runs
    them through ReLU layers ``layer_sizes[1:]``; a final dense unit over both towers' outputs gives
    the logit ``z``. Two objectives:

    * ``"implicit"`` (the NCF paper's setting, for ranking): every training row is a positive,
      ``n_negatives`` items the user did not interact with are drawn per positive with
      :func:`tfrec.data.sampling.sample_negatives` -- afresh every epoch -- and the loss is binary
      cross-entropy on ``sigmoid(z)``. The output is the interaction probability; ``recommend``
      ranks by ``z``. Early stopping watches the loss on held-out positives with fixed negatives.
    * ``"rating"``: ``z + global_mean`` is a rating, trained with mean squared error.

    Both add ``l2`` times the squared norms of each example's four embedding rows to the loss.

    Inputs: ``user_id``, ``item_id`` (tf.string [batch]). Output: float32 [batch] (probability of
    interaction, or rating).

    Args:
      embedding_dim: GMF embedding size.
      layer_sizes: MLP tower sizes; the first is the width of the concatenated MLP embeddings.
      objective: ``"implicit"`` or ``"rating"``.
      n_negatives: sampled negatives per positive (implicit).
      negative_sampling: ``"uniform"`` or ``"popularity"`` (implicit).
      l2: per-example penalty on the embeddings.
      learning_rate, batch_size, epochs, patience, seed, pipeline, steps_per_execution, refit,
        vocabularies: as in :class:`~tfrec.models.mf.MatrixFactorization`.
      global_mean: rating offset (objective ``"rating"``; set by the first ``fit``).

    Defaults were chosen on validation data carved from the ML-100K training split (each user's
    last two training interactions, sampled-100 HR@10/NDCG@10): 32 GMF factors, a 64-32-16 MLP,
    4 negatives, batches of 4096 at learning rate 2e-3 did as well as 64 factors, 8 negatives,
    per-example L2 or smaller batches, and cost least.

    Example:
      >>> model = NeuMF(objective="implicit").fit(train)                 # doctest: +SKIP
      >>> model.recommend(["1"], k=10)                                   # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID)

    def __init__(self, embedding_dim: int = 32, layer_sizes: Sequence[int] = (64, 32, 16),
                 objective: str = "implicit", n_negatives: int = 4, negative_sampling: str = "uniform",
                 l2: float = 0.0, learning_rate: float = 2e-3, batch_size: int = 4096, epochs: int = 30,
                 patience: int = 2, seed: int = 0, pipeline: str = "tensor", steps_per_execution: int = 32,
                 refit: bool = True, vocabularies: Optional[dict] = None, global_mean: float = 3.5, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.layer_sizes = check_layer_sizes("layer_sizes", layer_sizes)
        if not self.layer_sizes or self.layer_sizes[0] < 2:
            raise ConfigError(f"layer_sizes must start with a size >= 2 (the MLP embeddings are half of it), "
                              f"got {layer_sizes!r}")
        if objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective = objective
        self.n_negatives = check_positive_int("n_negatives", n_negatives)
        if negative_sampling not in NEGATIVE_SAMPLING:
            raise ConfigError(f"negative_sampling must be one of {NEGATIVE_SAMPLING}, got {negative_sampling!r}")
        self.negative_sampling = negative_sampling
        self.l2 = check_non_negative("l2", l2)
        self.global_mean = float(global_mean)
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline,
                          steps_per_execution=steps_per_execution, refit=refit)

    # The label and the epoch loop depend on the objective.
    @property
    def label_key(self) -> str:
        return LABEL if self.objective == "implicit" else F.RATING

    @property
    def resample_each_epoch(self) -> bool:
        return self.objective == "implicit"

    def _build_layers(self) -> None:
        n_u, n_i = len(self.vocabularies[F.USER_ID]) + 1, len(self.vocabularies[F.ITEM_ID]) + 1
        mlp_dim = self.layer_sizes[0] // 2
        self.user_lookup = string_lookup(self.vocabularies[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "item_lookup")
        self.gmf_user = seeded_embedding(n_u, self.embedding_dim, name="gmf_user", seed=self.seed, stddev=0.01)
        self.gmf_item = seeded_embedding(n_i, self.embedding_dim, name="gmf_item", seed=self.seed, stddev=0.01)
        self.mlp_user = seeded_embedding(n_u, mlp_dim, name="mlp_user", seed=self.seed, stddev=0.01)
        self.mlp_item = seeded_embedding(n_i, mlp_dim, name="mlp_item", seed=self.seed, stddev=0.01)
        self.mlp = [tf.keras.layers.Dense(s, activation="relu", name=f"mlp_{j}",
                                          kernel_initializer=glorot_uniform(self.seed, f"mlp_{j}"))
                    for j, s in enumerate(self.layer_sizes[1:])]
        self.head = tf.keras.layers.Dense(1, name="prediction",
                                          kernel_initializer=glorot_uniform(self.seed, "prediction"))

    def _global_mean_from(self, ratings: pd.Series) -> Optional[float]:
        return super()._global_mean_from(ratings) if self.objective == "rating" else None

    def _prepare(self, train: pd.DataFrame, items, users) -> None:
        super()._prepare(train, items, users)
        # Every (user, item) of the training frame, to keep validation negatives honest.
        self._positives = pd.MultiIndex.from_arrays([train[F.USER_ID].astype(str), train[F.ITEM_ID].astype(str)])

    def logits(self, features, training=False) -> tf.Tensor:
        """The pre-activation score ``z`` [batch] (what ranking uses)."""
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        gu, gi, mu, mi = self.gmf_user(u), self.gmf_item(i), self.mlp_user(u), self.mlp_item(i)
        x = tf.concat([mu, mi], axis=-1)
        for dense in self.mlp:
            x = dense(x)
        if training and self.l2:
            sq = [tf.reduce_sum(tf.square(e), -1) for e in (gu, gi, mu, mi)]
            self.add_loss(self.l2 * tf.reduce_mean(tf.add_n(sq)))
        return self.head(tf.concat([gu * gi, x], axis=-1))[:, 0]

    def call(self, features, training=False):
        z = self.logits(features, training=training)
        return tf.sigmoid(z) if self.objective == "implicit" else z + self.global_mean

    def ranking_scores(self, features) -> tf.Tensor:
        if self.objective == "implicit":
            # The logit: same order as the probability, without float32 saturation ties near 1.
            return self.logits(features, training=False)
        return super().ranking_scores(features)

    def get_config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "layer_sizes": list(self.layer_sizes),
                "objective": self.objective, "n_negatives": self.n_negatives,
                "negative_sampling": self.negative_sampling, "l2": self.l2, "global_mean": self.global_mean,
                "steps_per_execution": self._steps_per_execution_setting, "refit": self.refit,
                **self._common_config()}

    # -- training hooks ------------------------------------------------------------------------------
    def _default_loss(self):
        if self.objective == "implicit":
            return tf.keras.losses.BinaryCrossentropy()
        return tf.keras.losses.MeanSquaredError()

    def _default_metrics(self):
        if self.objective == "implicit":
            return [tf.keras.metrics.AUC(name="auc")]
        return [tf.keras.metrics.RootMeanSquaredError(name="rmse")]

    def _negatives(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        from tfrec.data.sampling import sample_negatives

        return sample_negatives(frame[[F.USER_ID, F.ITEM_ID]], n_negatives=self.n_negatives,
                                strategy=self.negative_sampling, seed=seed, items=self.catalog_)

    def _training_frame(self, train: pd.DataFrame, epoch: int = 0) -> pd.DataFrame:
        if self.objective != "implicit":
            return train
        return self._negatives(train, self.seed + 1 + epoch)

    def _validation_frame(self, val: pd.DataFrame) -> pd.DataFrame:
        if self.objective != "implicit":
            return val
        rows = self._negatives(val, self.seed + 100_003)
        # A negative drawn for a held-out positive may be one of the user's *training* items.
        key = pd.MultiIndex.from_arrays([rows[F.USER_ID].astype(str), rows[F.ITEM_ID].astype(str)])
        keep = (rows[LABEL].to_numpy() > 0) | ~key.isin(self._positives)
        return rows[keep].reset_index(drop=True)

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.gmf_item.embeddings, self.catalog_)
