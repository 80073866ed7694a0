"""Training on integer id indices, one traced TensorFlow loop per epoch (MatrixFactorization's fit).

Keras ``fit`` over a ``tf.data`` pipeline of string features costs a model as small as MF far
more than its arithmetic: the string lookups of every batch, the pipeline's per-batch ops, Keras'
per-epoch machinery (iterator, callbacks, an ``evaluate`` call) and the train function traced
twice (autograph traces a ``steps_per_execution`` loop body once to check it, then again in the
``while_loop``). Here the ids are looked up once per fit, every epoch is a single call into one
traced ``tf.while_loop`` over shuffled index batches (``tf.gather`` on in-memory tensors) that ends
with the epoch's validation pass (one batched forward pass in the same call, so nothing else is
traced).

The model supplies ``forward_indices(user_index, item_index) -> (prediction, penalty)`` (both
float32 [batch]): the loss of a batch is ``mean((prediction - rating)^2) + mean(penalty)``, as
Keras computes MSE plus the model's ``add_loss`` penalty. A model may also supply that loss's
gradients written out (MF's ``loss_gradients_indices``): a third of the ops of ``GradientTape``'s
graph, which shortens both the trace and the step. Updates use the model's compiled Keras
optimizer, so its state is the same kind Keras ``fit`` leaves.
"""

from __future__ import annotations

import sys
from typing import Callable, Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.models.optimizers import FusedAdam

_INDEX_SPEC = [tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.float32)]


class IndexedRatings:
    """A ratings frame as tensors of lookup indices: ``users``, ``items`` (int64 [n]), ``ratings``
    (float32 [n]); the string ids go through the model's own lookup layers once."""

    def __init__(self, frame: pd.DataFrame, user_lookup, item_lookup, label_key: str = F.RATING):
        self.n = len(frame)
        self.users = tf.cast(user_lookup(tf.constant(frame[F.USER_ID].astype(str).to_numpy())), tf.int64)
        self.items = tf.cast(item_lookup(tf.constant(frame[F.ITEM_ID].astype(str).to_numpy())), tf.int64)
        self.ratings = tf.constant(frame[label_key].to_numpy(np.float32))

    @classmethod
    def concat(cls, a: "IndexedRatings", b: "IndexedRatings") -> "IndexedRatings":
        out = cls.__new__(cls)
        out.n = a.n + b.n
        out.users, out.items = tf.concat([a.users, b.users], 0), tf.concat([a.items, b.items], 0)
        out.ratings = tf.concat([a.ratings, b.ratings], 0)
        return out

    @classmethod
    def empty(cls) -> "IndexedRatings":
        out = cls.__new__(cls)
        out.n = 0
        out.users, out.items = tf.zeros([0], tf.int64), tf.zeros([0], tf.int64)
        out.ratings = tf.zeros([0], tf.float32)
        return out


class GraphLoop:
    """Epochs of mini-batch training, each with its validation pass, as one traced function.

    Args:
      forward: ``(user_index, item_index) -> (prediction, penalty)``, float32 [batch] each.
      variables: the trainable variables.
      optimizer: a Keras optimizer (built for ``variables``). A
        :class:`~tfrec.models.optimizers.FusedAdam` (or its ``LazyAdam``) takes its update with
        less graph (:meth:`~tfrec.models.optimizers.FusedAdam.apply_fused`).
      batch_size: rows per update.
      gradients: optional ``(user_index, item_index, rating) -> (squared_errors [batch], loss,
        [(gradient, variable), ...])``, the loss's gradients written out by the model (dense or
        ``tf.IndexedSlices``, as ``GradientTape`` gives them for embedding lookups). Without it
        the step differentiates ``forward`` with a ``GradientTape``.

    XLA (``jit_compile``) does not pay here on CPU: compiling the whole epoch loop made MF's fit
    ~10x slower, compiling the step alone added compile time for no faster steps.
    """

    def __init__(self, forward: Callable, variables, optimizer, *, batch_size: int,
                 gradients: Optional[Callable] = None):
        self.forward, self.variables, self.optimizer = forward, list(variables), optimizer
        self.gradients = gradients
        self.batch_size = int(batch_size)
        self._epoch = tf.function(self._epoch_fn, input_signature=_INDEX_SPEC + [tf.TensorSpec([None], tf.int64)]
                                  + _INDEX_SPEC, autograph=False)

    def _step(self, u, i, r):
        """One update; returns (loss, sum of squared errors) of the batch."""
        if self.gradients is not None:
            se, loss, pairs = self.gradients(u, i, r)
        else:
            with tf.GradientTape() as tape:
                pred, penalty = self.forward(u, i)
                se = tf.square(pred - r)
                loss = tf.reduce_mean(se) + tf.reduce_mean(penalty)
            pairs = list(zip(tape.gradient(loss, self.variables), self.variables))
        if isinstance(self.optimizer, FusedAdam):
            update = self.optimizer.apply_fused(pairs)
        else:
            update = self.optimizer.apply_gradients(pairs)
        with tf.control_dependencies([update]):
            return tf.identity(loss), tf.reduce_sum(se)

    def _epoch_fn(self, users, items, ratings, order, val_users, val_items, val_ratings):
        n = tf.shape(order, out_type=tf.int64)[0]
        size = tf.constant(self.batch_size, tf.int64)
        n_batches = (n + size - 1) // size

        def body(b, loss_sum, se_sum):
            start = b * size
            idx = order[start:tf.minimum(start + size, n)]
            loss, se = self._step(tf.gather(users, idx), tf.gather(items, idx), tf.gather(ratings, idx))
            rows = tf.cast(tf.size(idx), tf.float32)
            return b + 1, loss_sum + loss * rows, se_sum + se

        zero = tf.constant(0.0)
        _, loss_sum, se_sum = tf.while_loop(lambda b, *_: b < n_batches, body,
                                            (tf.constant(0, tf.int64), zero, zero))
        rows = tf.cast(n, tf.float32)
        with tf.control_dependencies([loss_sum, se_sum]):  # validate the weights this epoch ends with
            val_pred, _ = self.forward(val_users, val_items)
        val_mse = tf.math.divide_no_nan(tf.reduce_sum(tf.square(val_pred - val_ratings)),
                                        tf.cast(tf.size(val_ratings), tf.float32))
        return loss_sum / rows, tf.sqrt(se_sum / rows), val_mse, tf.sqrt(val_mse)

    def train_epoch(self, data: IndexedRatings, seed: int, val: Optional[IndexedRatings] = None) -> dict:
        """One epoch over ``data`` in a seeded random order: ``{"loss", "rmse"}`` (Keras' meanings:
        the size-weighted mean batch loss with the penalty, the RMSE of the predictions) and, with
        ``val``, ``{"val_loss", "val_rmse"}`` of the weights after the epoch (val_loss: the MSE, as
        Keras' validation loss)."""
        order = tf.constant(np.random.default_rng(seed).permutation(data.n).astype(np.int64))
        v = val if val is not None else IndexedRatings.empty()
        loss, rmse, val_mse, val_rmse = self._epoch(data.users, data.items, data.ratings, order,
                                                    v.users, v.items, v.ratings)
        logs = {"loss": float(loss), "rmse": float(rmse)}
        if val is not None:
            logs.update(val_loss=float(val_mse), val_rmse=float(val_rmse))
        return logs


def fit_epochs(loop: GraphLoop, train: IndexedRatings, val: Optional[IndexedRatings], *, epochs: int,
               patience: int, seed: int, get_weights: Callable, set_weights: Callable, verbose=0) -> dict:
    """Up to ``epochs`` epochs; with ``val``, early stopping on its loss after ``patience`` epochs
    without improvement, best weights restored. Returns the Keras-style history dict
    (``loss``, ``rmse`` and with ``val`` ``val_loss``, ``val_rmse``: one value per epoch)."""
    history: dict = {}
    best, best_weights, waited = np.inf, None, 0
    for epoch in range(epochs):
        logs = loop.train_epoch(train, seed=seed * 100003 + epoch, val=val)
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        if verbose not in (0, False, None):
            print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()),
                  file=sys.stderr, flush=True)
        if val is None:
            continue
        if logs["val_loss"] < best:
            best, best_weights, waited = logs["val_loss"], get_weights(), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_weights is not None:
        set_weights(best_weights)
    return history
