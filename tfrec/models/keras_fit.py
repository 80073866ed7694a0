"""The training loop of tfrec's Keras models: ``fit`` on a ratings DataFrame.

``fit(train_dataframe, items=None, users=None, ...)`` fits vocabularies on the training frame,
builds the layers, carves a validation set from the training frame (``validation_fraction``) for
early stopping (best weights restored), streams the training rows through shuffled blocks
(:mod:`tfrec.models.batching`) into Keras ``fit`` and records ``history_``, ``best_epoch_`` and
``fit_seconds_``; with ``refit=True`` it retrains on the whole training frame for ``best_epoch_``
epochs. Given a ``tf.data.Dataset`` (or arrays), ``fit`` *is* Keras's ``fit``.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError, DataError
from tfrec.models.base import validate_ratings_frame
from tfrec.models.batching import cached_blocks, default_block_size, epoch_batches, shuffled_batches
from tfrec.models.distributed_input import active_strategy, distributed_fit_input, keras_verbose
from tfrec.models.checks import check_fraction, check_positive_int, normalise_vocabularies
from tfrec.models.layers import Untracked
from tfrec.models.optimizers import LazyAdam

PIPELINES = ("tensor", "generator")


class KerasFitMixin:
    """``fit`` and its helpers for a :class:`~tfrec.models.keras_base.KerasRecommender`."""

    def fit(self, x=None, y=None, *, items: Optional[pd.DataFrame] = None, users: Optional[pd.DataFrame] = None,
            validation_data=None, validation_fraction: float = 0.1, epochs: Optional[int] = None,
            batch_size: Optional[int] = None, pipeline: Optional[str] = None, verbose="auto", callbacks=None,
            **kwargs):
        """Fit on a ratings DataFrame (tfrec) or on a ``tf.data.Dataset`` / arrays (plain Keras).

        With a DataFrame ``x`` (columns ``user_id``, ``item_id`` and the label, e.g. ``rating``):
        fits vocabularies (first call only), builds the layers and side tables, holds out a random
        ``validation_fraction`` of ``x`` (or uses ``validation_data``, a DataFrame) for early
        stopping on the validation loss with ``patience`` and best-weight restoring, and trains for
        at most ``epochs`` (default: the constructor's) epochs. Returns ``self``; ``history_`` holds
        the per-epoch metrics and ``fit_seconds_`` the wall time of the whole call.

        Anything else is passed to Keras ``fit`` unchanged (``epochs`` defaults to 1 there, as in
        Keras) and its ``History`` is returned; the model must be built (fitted on a DataFrame
        once, or constructed with ``vocabularies``).

        Args:
          items, users: side tables for models that use item / user features.
          validation_fraction: share of ``x`` held out for early stopping (0: no early stopping).
          pipeline: ``"tensor"`` or ``"generator"`` (default: the constructor's).
          verbose, callbacks, **kwargs: as for Keras ``fit``.
        """
        if isinstance(x, pd.DataFrame):
            if y is not None:
                raise ConfigError("fit(DataFrame) takes no y: the label is the frame's "
                                  f"{self.label_key or 'implicit'!r} column")
            return self._fit_frame(
                x, items=items, users=users, validation_data=validation_data,
                validation_fraction=check_fraction("validation_fraction", validation_fraction),
                epochs=check_positive_int("epochs", epochs) if epochs is not None else self.epochs,
                batch_size=check_positive_int("batch_size", batch_size) if batch_size is not None else self.batch_size,
                pipeline=self._check_pipeline(pipeline), verbose=verbose, callbacks=callbacks, **kwargs)
        if not self.is_built_:
            raise ConfigError(f"{type(self).__name__}.fit({type(x).__name__}) needs a built model: fit on a ratings "
                              "DataFrame first, or construct it with vocabularies=")
        if not getattr(self, "_is_compiled", False):
            self._compile_default()
        return super().fit(x, y, validation_data=validation_data, epochs=epochs or 1, batch_size=batch_size,
                           verbose=verbose, callbacks=callbacks, **kwargs)

    def _check_pipeline(self, pipeline) -> str:
        if pipeline is None:
            return self.pipeline
        if pipeline not in PIPELINES:
            raise ConfigError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}")
        return pipeline

    def _prepare(self, train: pd.DataFrame, items, users) -> None:
        """Vocabularies (first fit only), layers, side tables and recommender state from train."""
        from tfrec.data.vocab import fit_side_features, fit_vocabularies

        self._remember_training_data(train)
        if self.vocabularies is None:
            mean = self._global_mean_from(train[F.RATING]) if F.RATING in train else None
            if mean is not None:
                self.global_mean = mean  # the output offset the first fit starts from
            side_items, side_users = (items, users) if self.uses_side_features else (None, None)
            vocabs = fit_vocabularies(train, items=side_items, users=side_users)
            if F.is_schema_data(side_items, side_users):  # your own data: features typed by its schema
                self._side_features = Untracked(fit_side_features(train, side_items, side_users)[0])
            self._vocabularies = Untracked(normalise_vocabularies(vocabs))
            self._build()
        self._set_side_tables(items, users)

    def _global_mean_from(self, ratings: pd.Series) -> Optional[float]:
        """The ``global_mean`` a first fit sets from the training ratings (None: the model has none)."""
        return float(ratings.mean()) if getattr(self, "global_mean", None) is not None else None

    def _training_frame(self, train: pd.DataFrame, epoch: int = 0) -> pd.DataFrame:
        """The rows Keras trains on in ``epoch`` (NeuMF's implicit objective adds sampled negatives)."""
        return train

    def _validation_frame(self, val: pd.DataFrame) -> pd.DataFrame:
        return val

    #: True when ``_training_frame`` gives new rows every epoch (one Keras ``fit`` call per epoch).
    resample_each_epoch: bool = False
    #: default of the ``refit`` setting (retrain on the whole frame after early stopping).
    refit: bool = False

    def _feature_subset(self) -> list:
        if self.side_features is not None:  # a schema dataset: ids plus its own feature names
            names = [n for n in self.feature_names if n in (F.USER_ID, F.ITEM_ID, F.TIMESTAMP)]
            return names + [n for n in self.side_features if n in self.side_tables]
        return [n for n in self.feature_names if n in (F.USER_ID, F.ITEM_ID) or n in self.side_tables]

    def _pipeline_kwargs(self, items, users, pipeline) -> dict:
        names = self._feature_subset() + ([self.label_key] if self.label_key else [])
        return dict(items=items if self.has_item_features else None, users=users if self.has_user_features else None,
                    pipeline=pipeline, label_key=self.label_key, features=names)

    def _dataset(self, frame, items, users, *, batch_size, pipeline, shuffle, seed):
        """A ``make_dataset`` pipeline over ``frame`` with the features this model reads."""
        from tfrec.data.pipelines import make_dataset

        kwargs = self._pipeline_kwargs(items, users, pipeline)
        if shuffle:
            return shuffled_batches(frame, batch_size=batch_size, seed=seed,
                                    drop_remainder=self._drop_short_batch(len(frame), batch_size), **kwargs)
        # Evaluation data: one pass in order, batches cached after the first epoch.
        return make_dataset(frame, batch_size=batch_size, shuffle=False, cache=False, **kwargs).cache()

    def _single_pass_dataset(self, frame, items, users, *, batch_size, pipeline, seed):
        """Batches for one epoch over rows made for it (e.g. fresh negatives): permuted in numpy,
        neither cached nor shuffled by tf.data, which would only add per-example work."""
        from tfrec.data.pipelines import make_dataset

        order = np.random.default_rng(seed).permutation(len(frame))
        names = self._feature_subset() + ([self.label_key] if self.label_key else [])
        drop = self._drop_short_batch(len(frame), batch_size)
        ds = make_dataset(frame.iloc[order].reset_index(drop=True), items=items if self.has_item_features else None,
                          users=users if self.has_user_features else None, pipeline=pipeline,
                          batch_size=batch_size, shuffle=False, cache=False, drop_remainder=drop,
                          label_key=self.label_key, features=names)
        n_batches = len(frame) // batch_size if drop else -(-len(frame) // batch_size)
        return ds.apply(tf.data.experimental.assert_cardinality(max(1, n_batches)))

    @staticmethod
    def _drop_short_batch(n_rows: int, batch_size: int) -> bool:
        """Whether training over ``n_rows`` drops the epoch's short last batch: yes under a
        tf.distribute strategy. Kept, it let two MirroredStrategy replicas meet in one all-gather of
        sparse embedding gradients with different row counts (one at the short batch, one at a full
        one), and training stopped with a collective shape mismatch; with full batches every step
        is alike. In one process every row trains. (Fewer rows than one batch keep their one short
        batch.)"""
        return active_strategy() is not None and n_rows >= batch_size

    def _default_optimizer(self) -> tf.keras.optimizers.Optimizer:
        """The optimizer of :meth:`_compile_default`.

        LazyAdam: a step updates the embedding rows its batch looks up, so it costs the batch, not
        the tables (under a tf.distribute strategy too: there training drops the epoch's short last
        batch, see :meth:`_drop_short_batch`).
        """
        return LazyAdam(self.learning_rate)

    def _compile_default(self) -> None:
        self.compile(optimizer=self._default_optimizer(), loss=self._default_loss(),
                     metrics=self._default_metrics(), steps_per_execution=self._default_steps_per_execution())

    def _prebuild_for_training(self) -> None:
        """Create the layer and optimizer variables before Keras traces its train function.

        A ``tf.function`` that creates variables on its first call is traced twice; building them
        up front saves one trace (about half a second for MF, a large share of a 3 s fit).
        """
        y_pred = self._build_all_variables()
        if type(self).train_step is not tf.keras.Model.train_step:
            return  # a custom step (TFRS) may create more variables than the forward pass does
        optimizer = getattr(self, "optimizer", None)
        if hasattr(optimizer, "build"):
            optimizer.build(self.trainable_variables)  # a no-op once built
        # Keras' loss and metric containers create their variables on first use too. These are
        # tf-keras internals, so any mismatch just leaves the work to the first trace.
        if y_pred is not None and self.label_key is not None:
            try:
                y_true = tf.zeros_like(y_pred)
                if not self.compiled_loss._built:
                    self.compiled_loss.build(y_pred)
                if not self.compiled_metrics._built:
                    self.compiled_metrics.build(y_pred, y_true)
            except Exception:  # pragma: no cover - depends on Keras internals
                pass

    def _default_loss(self):
        return tf.keras.losses.MeanSquaredError()

    def _default_metrics(self):
        return [tf.keras.metrics.RootMeanSquaredError(name="rmse")]

    def _default_steps_per_execution(self) -> int:
        # Tiny models are dominated by Keras' per-step Python overhead: run many steps per call.
        return getattr(self, "_steps_per_execution_setting", 32)

    def _split_validation(self, train, validation_data, validation_fraction):
        if validation_data is not None:
            if not isinstance(validation_data, pd.DataFrame):
                raise ConfigError("validation_data for fit(DataFrame) must be a ratings DataFrame, got "
                                  f"{type(validation_data).__name__}")
            validate_ratings_frame(validation_data, name="validation_data", need_rating=self.label_key == F.RATING)
            return train, validation_data
        if validation_fraction > 0:
            from tfrec.data.splits import random_split

            fit_part, val_part = random_split(train, test_fraction=validation_fraction, seed=self.seed)
            if len(fit_part) == 0 or len(val_part) == 0:
                raise DataError(f"train has {len(train)} rows: too few to hold out validation_fraction="
                                f"{validation_fraction}")
            return fit_part, val_part
        return train, None

    def _begin_fit(self, train, items, users, validation_data, validation_fraction, *, prebuild=None):
        """What every fit loop does first: check the frame, seed, carve the validation rows, fit the
        vocabularies, compile the defaults and create the variables (``prebuild``, default
        :meth:`_prebuild_for_training`). Returns ``(fit_part, val_part, refit, initial_weights)``;
        ``initial_weights`` is None unless the fit ends with a refit on all rows."""
        validate_ratings_frame(train, need_rating=self.label_key == F.RATING)
        # Seeds Python, NumPy and TensorFlow so a fit is repeatable for a given seed.
        tf.keras.utils.set_random_seed(self.seed)
        fit_part, val_part = self._split_validation(train, validation_data, validation_fraction)
        # Vocabularies and recommender state come from the whole training frame: validation rows
        # are training data the model is not fitted on, not held-out test data.
        self._prepare(train, items, users)
        if not getattr(self, "_is_compiled", False):
            self._compile_default()
        (prebuild or self._prebuild_for_training)()
        refit = self.refit and val_part is not None and validation_data is None
        return fit_part, val_part, refit, (self.get_weights() if refit else None)

    def _fit_frame(self, train, *, items, users, validation_data, validation_fraction, epochs, batch_size, pipeline,
                   verbose, callbacks, **kwargs):
        t0 = time.perf_counter()
        fit_part, val_part, refit, initial = self._begin_fit(train, items, users, validation_data, validation_fraction)
        run = dict(items=items, users=users, batch_size=batch_size, pipeline=pipeline, verbose=verbose,
                   callbacks=callbacks, **kwargs)
        # Models with the stock pipeline stream each part once into cached blocks; the refit then
        # trains on the union of the cached training and validation blocks at no extra input cost.
        reuse_blocks = type(self)._dataset is KerasFitMixin._dataset and not self.resample_each_epoch
        val_ds = fit_blocks = val_blocks = None
        if reuse_blocks:
            block = default_block_size(batch_size)
            fit_frame = self._training_frame(fit_part)
            fit_blocks = cached_blocks(fit_frame, block_size=block, seed=self.seed,
                                       **self._pipeline_kwargs(items, users, pipeline))
            train_ds = epoch_batches(fit_blocks, len(fit_frame), batch_size=batch_size, seed=self.seed,
                                     drop_remainder=self._drop_short_batch(len(fit_frame), batch_size))
            if val_part is not None:
                val_frame = self._validation_frame(val_part)
                val_blocks = cached_blocks(val_frame, block_size=block, seed=self.seed,
                                           **self._pipeline_kwargs(items, users, "tensor"))
                val_ds = epoch_batches(val_blocks, len(val_frame), batch_size=self.validation_batch_size,
                                       shuffle=False)
            history = self._train(None, val_ds, epochs=epochs, dataset=train_ds, **run)
        else:
            if val_part is not None:
                val_ds = self._dataset(self._validation_frame(val_part), items, users,
                                       batch_size=self.validation_batch_size, pipeline="tensor", shuffle=False,
                                       seed=self.seed)
            history = self._train(fit_part, val_ds, epochs=epochs, **run)
        self.best_epoch_ = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else len(history["loss"])
        if refit:
            # The held-out rows told us how long to train; now train that long on all of them
            # (on ML-100K this alone lowers MF's RMSE by ~0.008: the data is that scarce).
            self._reset_training_state(initial)
            all_ds = None
            if reuse_blocks:
                n_all = len(fit_frame) + len(val_frame)
                all_ds = epoch_batches(fit_blocks.concatenate(val_blocks), n_all, batch_size=batch_size,
                                       seed=self.seed + 1, drop_remainder=self._drop_short_batch(n_all, batch_size))
            again = self._train(train, None, epochs=self.best_epoch_, dataset=all_ds, **run)
            history.update({f"refit_{k}": v for k, v in again.items()})
        self.history_ = {k: [float(v) for v in vs] for k, vs in history.items()}
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _reset_training_state(self, weights) -> None:
        """Back to the initial weights with a fresh optimizer state (traced functions are kept)."""
        self.set_weights(weights)
        for var in getattr(self.optimizer, "variables", []):
            var.assign(tf.zeros_like(var))

    def _train(self, frame, val_ds, *, items, users, epochs, batch_size, pipeline, verbose, callbacks, dataset=None,
               **kwargs):
        """Up to ``epochs`` epochs on ``frame`` (or a ready ``dataset``); early stopping (best weights
        kept) when ``val_ds`` is given."""
        if self.resample_each_epoch:
            return self._train_resampling(frame, val_ds, items=items, users=users, epochs=epochs,
                                          batch_size=batch_size, pipeline=pipeline, verbose=verbose,
                                          callbacks=callbacks, **kwargs)
        cbs = list(callbacks or [])
        if val_ds is not None:
            cbs.append(tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                        restore_best_weights=True))
        ds = dataset
        if ds is None:
            ds = self._dataset(self._training_frame(frame), items, users, batch_size=batch_size, pipeline=pipeline,
                               shuffle=True, seed=self.seed)
        strategy = active_strategy()
        if strategy is not None:
            def rebuild():
                return self._dataset(self._training_frame(frame), items, users, batch_size=batch_size,
                                     pipeline=pipeline, shuffle=True, seed=self.seed)

            ds, val_ds, extra = distributed_fit_input(strategy, ds, val_ds, batch_size=batch_size,
                                                      make_train_dataset=rebuild if frame is not None else None,
                                                      n_rows=len(frame) if frame is not None else None)
            kwargs = {**kwargs, **extra}
            verbose = keras_verbose(strategy, verbose)
        return dict(super().fit(ds, validation_data=val_ds, epochs=epochs, verbose=verbose, callbacks=cbs,
                                **kwargs).history)

    def _train_resampling(self, frame, val_ds, *, items, users, epochs, batch_size, pipeline, verbose, callbacks,
                          **kwargs) -> dict:
        """One Keras ``fit`` call per epoch on fresh rows, early stopping on ``val_loss`` by hand."""
        history: dict = {}
        best, best_weights, waited = np.inf, None, 0
        for epoch in range(epochs):
            rows = self._training_frame(frame, epoch)
            ds = self._single_pass_dataset(rows, items, users, batch_size=batch_size, pipeline=pipeline,
                                           seed=self.seed + epoch)
            h = super().fit(ds, validation_data=val_ds, epochs=epoch + 1, initial_epoch=epoch, verbose=verbose,
                            callbacks=callbacks, **kwargs).history
            for k, v in h.items():
                history.setdefault(k, []).extend(v)
            if val_ds is None:
                continue
            current = h["val_loss"][-1]
            if current < best:
                best, best_weights, waited = current, self.get_weights(), 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_weights is not None:
            self.set_weights(best_weights)
        return history

    def restore(self, train: pd.DataFrame, *, items=None, users=None, weights: Optional[str] = None):
        """Rebuild a fitted model made by ``from_config``: side tables, recommender state, weights.

        Args:
          train: the training ratings (catalog, seen items and popularity for ``recommend``).
          items, users: the side tables the model was fitted with (if it uses them).
          weights: a checkpoint written by ``save_weights`` (optional).
        """
        self._check_built()
        self._prepare(train, items, users)
        self._build_all_variables()
        if weights is not None:
            self.load_weights(weights).expect_partial()
        return self

    def _build_all_variables(self) -> None:
        """One forward pass so every layer creates its variables (e.g. before ``load_weights``)."""
        return self.call_ids(tf.constant(self.vocabularies[F.USER_ID][:1]),
                             tf.constant(self.vocabularies[F.ITEM_ID][:1]))

    def _check_built(self) -> None:
        if not self.is_built_:
            raise ConfigError(f"{type(self).__name__} has no layers yet: call fit(train) first, or construct it "
                              "with vocabularies= (e.g. from_config of a fitted model)")
