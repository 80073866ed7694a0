"""Neural matrix factorization (He et al., 2017): GMF and MLP towers fused."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
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

OBJECTIVES = ("implicit", "rating")


class NeuMF(KerasRecommender, tf.keras.Model):
    """NeuMF: ``h^T [p_u * q_i ; MLP([p'_u ; q'_i])]`` with separate GMF and MLP embeddings.

    Two objectives:

    * ``"implicit"`` (default; the NCF paper's setting): every rating is a positive, ``n_negatives``
      unrated items per positive are sampled (re-sampled every epoch), binary cross-entropy on the
      logit. Outputs are probabilities of interaction; ranking uses the logit.
    * ``"rating"``: mean squared error on explicit ratings; outputs ratings.

    Inputs: ``user_id``, ``item_id`` (tf.string [batch]). Output: float32 [batch] (probability or
    rating).

    Args:
      embedding_dim: GMF embedding size (the MLP tower's embeddings are ``layer_sizes[0] // 2``).
      layer_sizes: MLP tower sizes.
      objective: ``"implicit"`` or ``"rating"``.
      n_negatives: negatives per positive (implicit).
      negative_sampling: ``"uniform"`` or ``"popularity"``.
      l2: L2 weight decay on embeddings.
      learning_rate, batch_size, epochs, patience, seed, pipeline, vocabularies: as in
        :class:`~tfrec.models.mf.MatrixFactorization`.

    Example:
      >>> model = NeuMF(objective="implicit").fit(train)                 # doctest: +SKIP
      >>> model.recommend(["1"], k=10)                                   # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID)

    def __init__(self, embedding_dim: int = 32, layer_sizes: Sequence[int] = (64, 32, 16),
                 objective: str = "implicit", n_negatives: int = 4, negative_sampling: str = "uniform",
                 l2: float = 1e-6, learning_rate: float = 2e-3, batch_size: int = 4096, epochs: int = 20,
                 patience: int = 2, seed: int = 0, pipeline: str = "tensor", vocabularies: Optional[dict] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.layer_sizes = check_layer_sizes("layer_sizes", layer_sizes)
        if not self.layer_sizes:
            raise ConfigError("layer_sizes must have at least one layer")
        if objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective = objective
        self.n_negatives = check_positive_int("n_negatives", n_negatives)
        if negative_sampling not in ("uniform", "popularity"):
            raise ConfigError(f"negative_sampling must be 'uniform' or 'popularity', got {negative_sampling!r}")
        self.negative_sampling = negative_sampling
        self.l2 = check_non_negative("l2", l2)
        self.label_key = "label" if objective == "implicit" else F.RATING
        self._epoch = 0
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline)

    def _build_layers(self) -> None:
        reg = tf.keras.regularizers.l2(self.l2) if self.l2 else None
        init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=self.seed)
        n_u, n_i = len(self.vocabularies[F.USER_ID]) + 1, len(self.vocabularies[F.ITEM_ID]) + 1
        mlp_dim = max(self.layer_sizes[0] // 2, 1)
        self.user_lookup = string_lookup(self.vocabularies[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "item_lookup")
        emb = tf.keras.layers.Embedding
        self.gmf_user = emb(n_u, self.embedding_dim, embeddings_initializer=init, embeddings_regularizer=reg,
                            name="gmf_user")
        self.gmf_item = emb(n_i, self.embedding_dim, embeddings_initializer=init, embeddings_regularizer=reg,
                            name="gmf_item")
        self.mlp_user = emb(n_u, mlp_dim, embeddings_initializer=init, embeddings_regularizer=reg, name="mlp_user")
        self.mlp_item = emb(n_i, mlp_dim, embeddings_initializer=init, embeddings_regularizer=reg, name="mlp_item")
        self.mlp = [tf.keras.layers.Dense(s, activation="relu", name=f"mlp_{j}") for j, s in enumerate(self.layer_sizes[1:])]
        self.head = tf.keras.layers.Dense(1, name="prediction")

    def logits(self, features, training=False):
        """Pre-activation score [batch] (what ranking uses)."""
        u = self.user_lookup(features[F.USER_ID])
        i = self.item_lookup(features[F.ITEM_ID])
        gmf = self.gmf_user(u) * self.gmf_item(i)
        x = tf.concat([self.mlp_user(u), self.mlp_item(i)], axis=-1)
        for dense in self.mlp:
            x = dense(x)
        return tf.squeeze(self.head(tf.concat([gmf, x], axis=-1)), -1)

    def call(self, features, training=False):
        z = self.logits(features, training=training)
        return tf.sigmoid(z) if self.objective == "implicit" else z

    def get_config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "layer_sizes": list(self.layer_sizes),
                "objective": self.objective, "n_negatives": self.n_negatives,
                "negative_sampling": self.negative_sampling, "l2": self.l2, **self._common_config()}

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

        return sample_negatives(frame, n_negatives=self.n_negatives, strategy=self.negative_sampling, seed=seed,
                                items=self.catalog_)

    def _training_frame(self, train: pd.DataFrame) -> pd.DataFrame:
        if self.objective != "implicit":
            return train
        return self._negatives(train, self.seed)

    def _validation_frame(self, val: pd.DataFrame) -> pd.DataFrame:
        if self.objective != "implicit":
            return val
        return self._negatives(val, self.seed + 10_000)

    def _fit_frame(self, train, *, epochs, **kwargs):
        if self.objective != "implicit":
            return super()._fit_frame(train, epochs=epochs, **kwargs)
        # Fresh negatives every epoch (the NCF recipe) with early stopping across the rounds.
        return _fit_resampling(self, train, epochs=epochs, **kwargs)

    def _score_users(self, user_ids) -> np.ndarray:
        u = self.user_lookup(tf.constant(np.asarray(user_ids, dtype=object).astype(str)))
        i = self.item_lookup(tf.constant(self.catalog_.astype(str)))
        out = []
        for r in range(len(user_ids)):
            uu = tf.repeat(u[r:r + 1], len(self.catalog_))
            gmf = self.gmf_user(uu) * self.gmf_item(i)
            x = tf.concat([self.mlp_user(uu), self.mlp_item(i)], axis=-1)
            for dense in self.mlp:
                x = dense(x)
            out.append(tf.squeeze(self.head(tf.concat([gmf, x], axis=-1)), -1).numpy())
        return np.stack(out).astype(np.float64)

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.gmf_item.embeddings, self.catalog_)


def _fit_resampling(model: NeuMF, train, *, items, users, validation_data, validation_fraction, epochs, batch_size,
                    pipeline, verbose, callbacks):
    import time

    from tfrec.data.pipelines import make_dataset
    from tfrec.data.splits import random_split
    from tfrec.models.base import validate_ratings_frame

    validate_ratings_frame(train)
    tf.keras.utils.set_random_seed(model.seed)
    if validation_data is None and validation_fraction:
        fit_part, val_part = random_split(train, test_fraction=validation_fraction, seed=model.seed)
    else:
        fit_part, val_part = train, validation_data
    model._prepare(train, items, users)
    if not getattr(model, "_is_compiled", False):
        model._compile_default()
    val_ds = None
    if val_part is not None and len(val_part):
        val_ds = make_dataset(model._validation_frame(val_part), batch_size=8192, shuffle=False, label_key="label",
                              features=[F.USER_ID, F.ITEM_ID, "label"])
    history: dict = {}
    best, best_weights, waited = np.inf, None, 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        frame = model._negatives(fit_part, model.seed + epoch)
        ds = make_dataset(frame, pipeline=pipeline, batch_size=batch_size, shuffle=True, seed=model.seed + epoch,
                          cache=False, label_key="label", features=[F.USER_ID, F.ITEM_ID, "label"])
        h = tf.keras.Model.fit(model, ds, validation_data=val_ds, epochs=epoch + 1, initial_epoch=epoch,
                               verbose=verbose, callbacks=callbacks)
        for k, v in h.history.items():
            history.setdefault(k, []).extend(v)
        if val_ds is not None:
            current = h.history["val_loss"][-1]
            if current < best - 1e-4:
                best, best_weights, waited = current, model.get_weights(), 0
            else:
                waited += 1
                if waited >= model.patience:
                    break
    if best_weights is not None:
        model.set_weights(best_weights)
    model.fit_seconds_ = time.perf_counter() - t0
    model.history_ = history
    return model
