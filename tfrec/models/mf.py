"""Matrix factorization with biases (the Indaba practical, seed 004)."""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError
from tfrec.models.checks import check_non_negative, check_positive_int
from tfrec.models.keras_base import KerasRecommender
from tfrec.models.initializers import seeded_embedding
from tfrec.models.layers import string_lookup
from tfrec.models.optimizers import LazyAdam


def check_rating_range(value) -> Optional[list]:
    """``[lo, hi]`` floats with lo < hi, or None; ConfigError naming ``rating_range`` otherwise."""
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"rating_range must be a pair (low, high) or None, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"rating_range must be finite with low < high, got {value!r}")
    return [lo, hi]


TRAINING_LOOPS = ("graph", "keras")


def _logit(p: float) -> float:
    p = float(np.clip(p, 1e-3, 1 - 1e-3))
    return float(np.log(p / (1 - p)))


class MatrixFactorization(KerasRecommender, tf.keras.Model):
    """Predicts a rating as ``mu + b_u + b_i + <p_u, q_i>``, optionally squashed into a range.

    With ``rating_range=(lo, hi)`` the output is ``lo + (hi - lo) * sigmoid(raw)``, which keeps
    predictions inside the rating scale (the Indaba practical used (0, 5.5); (0.5, 5.5) leaves
    room around 1 and 5 stars). ``mu`` starts at the training mean (in the raw, pre-sigmoid units).

    Loss: mean squared error plus, per example, ``l2 * (|p_u|^2 + |q_i|^2) + bias_l2 * (b_u^2 +
    b_i^2)`` for the user and item of that example, averaged over the batch. This is the classic
    SGD-MF regulariser (Funk; Koren et al.): an entity is penalised once per rating it appears in.
    A Keras ``embeddings_regularizer`` would instead shrink every row at every step, crushing the
    factors of rarely rated items.

    Inputs: a feature dict with ``user_id`` and ``item_id`` (tf.string [batch]); other features are
    ignored. Output: rating, float32 [batch].

    Args:
      embedding_dim: size of p_u and q_i.
      l2: penalty weight on the factors of each example's user and item.
      bias_l2: penalty weight on their biases.
      use_bias: learn b_u and b_i (mu is always learned).
      rating_range: ``(lo, hi)`` for sigmoid squashing, or None for a plain linear output.
      learning_rate, batch_size, epochs, patience, seed, pipeline, steps_per_execution: training
        settings used by ``fit(dataframe)`` (lazy Adam, :class:`~tfrec.models.optimizers.LazyAdam`:
        only the looked-up rows of the embedding and bias tables move at each step; early stopping
        on a validation set carved from the training frame).
      training_loop: how ``fit(dataframe)`` trains. ``"graph"`` (default): the ids are looked up
        once per fit and every epoch is one call into a traced TensorFlow loop over shuffled
        mini-batches of indices (:mod:`tfrec.models.graph_loop`) whose step uses the loss gradients
        written out (:meth:`loss_gradients_indices`); same model, loss, optimizer, early stopping
        and refit as Keras ``fit``, ~2x less CPU and far less waiting on a loaded machine. ``"keras"``: Keras ``fit`` over the
        ``pipeline``'s ``tf.data`` batches of string ids, ``steps_per_execution`` steps per call.
        Keras ``fit`` is also used whenever callbacks, extra Keras ``fit`` arguments, the generator
        pipeline, a distribution strategy or your own ``compile`` ask for it.
      vocabularies: ``{"user_id": [...], "item_id": [...]}`` (set by ``fit``; part of the config so
        ``from_config`` rebuilds the model).
      global_mean: the training mean rating (set by the first ``fit``).

    Defaults were chosen on a validation split carved from the ML-100K training split, never the
    test split (``benchmarks/rating.py`` reports the result): 32 factors with ``l2=0.1`` beat
    64-256 factors at any penalty tried; batches of 1024 at learning rate 5e-3 beat 2048-4096
    (fewer, noisier updates) and 1e-2 (less stable across seeds). The validation loss of MF is a
    smooth U-curve, so ``patience=1`` loses nothing and saves an epoch.

    Bias interpretation: :meth:`item_biases`, :meth:`user_biases` and :meth:`top_items_by_bias`
    list what the model thinks of items regardless of who watches them.

    Example:
      >>> model = MatrixFactorization(embedding_dim=32).fit(train)        # doctest: +SKIP
      >>> model.predict_ratings(["1"], ["50"])                             # doctest: +SKIP
      >>> model.top_items_by_bias(n=5)                                     # doctest: +SKIP
    """

    feature_names = (F.USER_ID, F.ITEM_ID)

    def __init__(self, embedding_dim: int = 32, l2: float = 0.1, bias_l2: float = 0.01, use_bias: bool = True,
                 rating_range: Optional[Sequence[float]] = (0.5, 5.5), learning_rate: float = 5e-3,
                 batch_size: int = 1024, epochs: int = 40, patience: int = 1, seed: int = 0,
                 pipeline: str = "tensor", steps_per_execution: int = 32, refit: bool = True,
                 training_loop: str = "graph", vocabularies: Optional[dict] = None, global_mean: float = 3.5, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.l2 = check_non_negative("l2", l2)
        self.bias_l2 = check_non_negative("bias_l2", bias_l2)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise ConfigError(f"use_bias must be True or False, got {use_bias!r}")
        self.use_bias = bool(use_bias)
        self.rating_range = check_rating_range(rating_range)
        self.global_mean = float(global_mean)
        if self.rating_range is not None and not self.rating_range[0] < self.global_mean < self.rating_range[1]:
            raise ConfigError(f"global_mean {global_mean!r} must lie inside rating_range {self.rating_range}")
        if training_loop not in TRAINING_LOOPS:
            raise ConfigError(f"training_loop must be one of {TRAINING_LOOPS}, got {training_loop!r}")
        self.training_loop = training_loop
        self._init_common(vocabularies=vocabularies, learning_rate=learning_rate, batch_size=batch_size,
                          epochs=epochs, patience=patience, seed=seed, pipeline=pipeline,
                          steps_per_execution=steps_per_execution, refit=refit)

    def _build_layers(self) -> None:
        n_users = len(self.vocabularies[F.USER_ID]) + 1
        n_items = len(self.vocabularies[F.ITEM_ID]) + 1
        self.user_lookup = string_lookup(self.vocabularies[F.USER_ID], "user_lookup")
        self.item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "item_lookup")
        self.user_embedding = seeded_embedding(n_users, self.embedding_dim, name="user_embedding", seed=self.seed,
                                               stddev=0.01)
        self.item_embedding = seeded_embedding(n_items, self.embedding_dim, name="item_embedding", seed=self.seed,
                                               stddev=0.01)
        if self.use_bias:
            self.user_bias = tf.keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
            self.item_bias = tf.keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
        if self.rating_range is not None:
            lo, hi = self.rating_range
            start = _logit((self.global_mean - lo) / (hi - lo))
        else:
            start = self.global_mean
        self.global_bias = self.add_weight(name="global_bias", shape=(),
                                           initializer=tf.keras.initializers.Constant(start))

    def _global_mean_from(self, ratings: pd.Series) -> float:
        mean = float(ratings.mean())
        if self.rating_range is not None:  # strictly inside the range: the sigmoid start is its logit
            lo, hi = self.rating_range
            mean = float(np.clip(mean, lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo)))
        return mean

    def _squash(self, raw):
        if self.rating_range is None:
            return raw
        lo, hi = self.rating_range
        return lo + (hi - lo) * tf.sigmoid(raw)

    def _raw_indices(self, u, i):
        """The factors and biases looked up for ``u``, ``i`` and what they give before squashing:
        ``(pu, qi, bu, bi, raw, penalty)``; ``bu``/``bi`` are None without biases."""
        pu, qi = self.user_embedding(u), self.item_embedding(i)
        raw = tf.reduce_sum(pu * qi, axis=-1) + self.global_bias
        penalty = self.l2 * (tf.reduce_sum(tf.square(pu), -1) + tf.reduce_sum(tf.square(qi), -1))
        bu = bi = None
        if self.use_bias:
            bu, bi = tf.squeeze(self.user_bias(u), -1), tf.squeeze(self.item_bias(i), -1)
            raw += bu + bi
            penalty += self.bias_l2 * (tf.square(bu) + tf.square(bi))
        return pu, qi, bu, bi, raw, penalty

    def forward_indices(self, u, i):
        """(rating, per-example penalty), float32 [batch] each, from lookup indices ``u``, ``i``."""
        *_, raw, penalty = self._raw_indices(u, i)
        return self._squash(raw), penalty

    def loss_gradients_indices(self, u, i, rating):
        """The graph loop's step: ``(squared_errors [batch], loss, [(gradient, variable), ...])`` for
        lookup indices ``u``, ``i`` and float32 ``rating`` [batch].

        The loss is the one ``forward_indices`` defines (mean squared error plus the mean per-example
        penalty) and the gradients are its derivatives written out, one per trainable variable: with
        ``e = prediction - rating`` and ``d = 2 e squash'(raw) / batch``, the row ``d q_i + 2 l2 p_u /
        batch`` for user ``u``'s row of the user table (a ``tf.IndexedSlices``, as ``GradientTape``
        gives it), likewise for the item table and the biases, and ``sum(d)`` for ``mu``. Equal to
        the tape's gradients (tested) in about a third of the ops, so a step runs and traces faster.
        """
        n = tf.cast(tf.size(rating), tf.float32)
        pu, qi, bu, bi, raw, penalty = self._raw_indices(u, i)
        if self.rating_range is None:
            pred, slope = raw, 1.0
        else:
            lo, hi = self.rating_range
            s = tf.sigmoid(raw)
            pred, slope = lo + (hi - lo) * s, (hi - lo) * s * (1.0 - s)
        err = pred - rating
        se = tf.square(err)
        loss = tf.reduce_mean(se) + tf.reduce_mean(penalty)
        d = (2.0 / n) * err * slope
        c = (2.0 * self.l2) / n
        dcol = d[:, None]

        def rows(grad, index, table):
            return tf.IndexedSlices(grad, index, tf.shape(table, out_type=index.dtype))

        grads = {id(self.global_bias): tf.reduce_sum(d),
                 id(self.user_embedding.embeddings): rows(dcol * qi + c * pu, u, self.user_embedding.embeddings),
                 id(self.item_embedding.embeddings): rows(dcol * pu + c * qi, i, self.item_embedding.embeddings)}
        if self.use_bias:
            cb = (2.0 * self.bias_l2) / n
            grads[id(self.user_bias.embeddings)] = rows((d + cb * bu)[:, None], u, self.user_bias.embeddings)
            grads[id(self.item_bias.embeddings)] = rows((d + cb * bi)[:, None], i, self.item_bias.embeddings)
        return se, loss, [(grads[id(v)], v) for v in self.trainable_variables]

    def call(self, features, training=False):
        rating, penalty = self.forward_indices(self.user_lookup(features[F.USER_ID]),
                                               self.item_lookup(features[F.ITEM_ID]))
        if training and (self.l2 or self.bias_l2):
            self.add_loss(tf.reduce_mean(penalty))
        return rating

    # -- fit(DataFrame): the graph loop ------------------------------------------------------------
    def _uses_graph_loop(self, pipeline, callbacks, kwargs) -> bool:
        """The graph loop trains unless Keras' own machinery is asked for: ``training_loop="keras"``,
        the generator pipeline, callbacks, extra Keras ``fit`` arguments, a distribution strategy,
        or a ``compile`` by the caller (their loss and optimizer are Keras ``fit``'s business)."""
        from tfrec.models.distributed_input import active_strategy

        own_compile = not getattr(self, "_is_compiled", False) or id(self.optimizer) == self._default_optimizer_id
        return (self.training_loop == "graph" and pipeline == "tensor" and not callbacks and not kwargs
                and own_compile and active_strategy() is None)

    _default_optimizer_id: Optional[int] = None

    def _compile_default(self) -> None:
        optimizer = LazyAdam(self.learning_rate)
        self.compile(optimizer=optimizer, loss=self._default_loss(), metrics=self._default_metrics(),
                     steps_per_execution=self._default_steps_per_execution())
        self._default_optimizer_id = id(optimizer)

    def _fit_frame(self, train, *, items, users, validation_data, validation_fraction, epochs, batch_size, pipeline,
                   verbose, callbacks, **kwargs):
        if not self._uses_graph_loop(pipeline, callbacks, kwargs):
            return super()._fit_frame(train, items=items, users=users, validation_data=validation_data,
                                      validation_fraction=validation_fraction, epochs=epochs, batch_size=batch_size,
                                      pipeline=pipeline, verbose=verbose, callbacks=callbacks, **kwargs)
        from tfrec.models.graph_loop import GraphLoop, IndexedRatings, fit_epochs

        t0 = time.perf_counter()
        # The graph loop needs only the model's and the optimizer's variables (no Keras loss/metric state).
        fit_part, val_part, refit, initial = self._begin_fit(train, items, users, validation_data, validation_fraction,
                                                             prebuild=self._build_model_and_optimizer_variables)
        fit_data = IndexedRatings(fit_part, self.user_lookup, self.item_lookup)
        val_data = IndexedRatings(val_part, self.user_lookup, self.item_lookup) if val_part is not None else None
        loop = GraphLoop(self.forward_indices, self.trainable_variables, self.optimizer, batch_size=batch_size,
                         gradients=self.loss_gradients_indices)
        run = dict(get_weights=self.get_weights, set_weights=self.set_weights, verbose=verbose)
        history = fit_epochs(loop, fit_data, val_data, epochs=epochs, patience=self.patience, seed=self.seed, **run)
        self.best_epoch_ = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else len(history["loss"])
        if refit:  # as in KerasFitMixin._fit_frame: the held-out rows set the epoch count, then train on all
            self._reset_training_state(initial)
            again = fit_epochs(loop, IndexedRatings.concat(fit_data, val_data), None, epochs=self.best_epoch_,
                               patience=self.patience, seed=self.seed + 1, **run)
            history.update({f"refit_{k}": v for k, v in again.items()})
        self.history_ = history
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _build_model_and_optimizer_variables(self) -> None:
        self._build_all_variables()
        self.optimizer.build(self.trainable_variables)

    def get_config(self) -> dict:
        return {
            "embedding_dim": self.embedding_dim,
            "l2": self.l2,
            "bias_l2": self.bias_l2,
            "use_bias": self.use_bias,
            "rating_range": list(self.rating_range) if self.rating_range is not None else None,
            "global_mean": self.global_mean,
            "steps_per_execution": self._steps_per_execution_setting, "refit": self.refit,
            "training_loop": self.training_loop,
            **self._common_config(),
        }

    # -- fast scoring: one matmul instead of per-pair calls -------------------------------------------
    def _score_users(self, user_ids) -> np.ndarray:
        u = self.user_lookup(tf.constant(np.asarray(user_ids, dtype=object).astype(str)))
        i = self.item_lookup(tf.constant(self.catalog_.astype(str)))
        raw = tf.matmul(self.user_embedding(u), self.item_embedding(i), transpose_b=True) + self.global_bias
        if self.use_bias:
            raw += self.user_bias(u) + tf.transpose(self.item_bias(i))
        return self._squash(raw).numpy().astype(np.float64)

    def item_vectors(self) -> np.ndarray:
        return self._embedding_rows(self.item_lookup, self.item_embedding.embeddings, self.catalog_)

    # -- bias interpretation -------------------------------------------------------------------------
    def _check_biases(self) -> None:
        self._check_fitted()
        if not self.use_bias:
            raise ConfigError("this MatrixFactorization was built with use_bias=False: it has no biases")

    def item_biases(self) -> pd.DataFrame:
        """Learned item biases b_i for the catalog, highest first: DataFrame (item_id, bias, n_ratings).

        ``bias`` is in the model's raw units (before the sigmoid when ``rating_range`` is set):
        what the model adds for an item whoever watches it. ``n_ratings`` is the item's number of
        training ratings (biases of rarely rated items stay near 0, shrunk by ``bias_l2``).
        """
        self._check_biases()
        b = self._embedding_rows(self.item_lookup, self.item_bias.embeddings, self.catalog_).reshape(-1)
        frame = pd.DataFrame({"item_id": self.catalog_.astype(str), "bias": b.astype(np.float64),
                              "n_ratings": self.popularity_.astype(np.int64)})
        return frame.sort_values(["bias", "item_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)

    def user_biases(self) -> pd.DataFrame:
        """Learned user biases b_u, highest first: DataFrame (user_id, bias): generous vs harsh raters."""
        self._check_biases()
        users = np.asarray(list(self.user_index_), dtype=object).astype(str)
        b = self._embedding_rows(self.user_lookup, self.user_bias.embeddings, users).reshape(-1)
        frame = pd.DataFrame({"user_id": users, "bias": b.astype(np.float64)})
        return frame.sort_values(["bias", "user_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)

    def top_items_by_bias(self, n: int = 10, worst: bool = False, min_ratings: int = 0) -> pd.DataFrame:
        """The ``n`` items the model rates highest (``worst=True``: lowest) regardless of the viewer.

        Args:
          n: number of items.
          worst: lowest biases first instead of highest.
          min_ratings: skip items with fewer training ratings.

        Returns:
          DataFrame (item_id, bias, n_ratings), best (or worst) first.
        """
        n = check_positive_int("n", n)
        if isinstance(min_ratings, bool) or not isinstance(min_ratings, (int, np.integer)) or min_ratings < 0:
            raise ConfigError(f"min_ratings must be a non-negative integer, got {min_ratings!r}")
        frame = self.item_biases()
        if min_ratings:
            frame = frame[frame["n_ratings"] >= min_ratings]
        if worst:
            frame = frame.sort_values(["bias", "item_id"], ascending=[True, True], kind="mergesort")
        return frame.head(n).reset_index(drop=True)
