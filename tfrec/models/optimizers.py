"""The optimizers tfrec's Keras models train with.

An ``Embedding`` lookup's gradient is sparse (``tf.IndexedSlices``: the looked-up rows). How Adam
applies it decides whether a step costs what the batch touches or what the tables hold:

* :class:`LazyAdam` (the default of every Keras model, under ``tf.distribute`` strategies too, where
  their training input drops the epoch's short last batch: replicas' sparse gradients of different
  row counts failed MirroredStrategy's all-gather): TF Addons' lazy rule, only the
  looked-up rows' moments and values move, so a step's cost follows the batch. The default
  ``TwoTower``'s step with ML-32M-sized tables (200,948 users, 57,761 rated items, three members:
  50M parameters) took 500 ms with :class:`DenseGradientAdam`, 356 ms of it the update, and 168 ms
  with this rule; at ML-1M's 6,040 users x 3,706 items the two cost about the same (172 vs 182 ms).
  One epoch of 300,000 ratings at the ML-32M sizes took 2.0x (FM), 1.4x (Wide&Deep) and 2.6x
  (NeuMF) less CPU than with :class:`DenseGradientAdam`, at ML-1M's sizes 0.88-1.0x
  (``benchmarks/train_throughput.py --n-users/--n-items``, README "Training throughput"). ML-100K
  quality held: the two-tower's full NDCG@10 over seeds 0-2 0.1224 mean vs 0.1220 dense; random-split
  RMSE over seeds 0-2 FM 0.9027 vs 0.9042, Wide&Deep 0.9214 vs 0.9241, NeuMF 0.9135 vs 0.9147.
* :class:`DenseGradientAdam` (the earlier default; ``benchmarks/train_throughput.py``'s
  ``*_dense_adam`` rows): the sparse gradient summed into a dense table, then Keras' dense Adam
  over every row. tf-keras' own Adam
  decays every row's moments at every step anyway (its sparse path adds a ``Unique`` +
  ``UnsortedSegmentSum`` and a scatter), so for small tables summing first is the same update with
  less work; but the step's cost grows with the tables (every row of the variable, ``m`` and ``v``
  read and written).
* :class:`FusedAdam`: :class:`DenseGradientAdam` through TensorFlow's one-op Adam kernel.
"""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfrec")
class DenseGradientAdam(tf.keras.optimizers.Adam):
    """``tf.keras.optimizers.Adam`` applying sparse gradients as dense ones (same update, less work).

    Takes Adam's arguments. Every gradient that is a ``tf.IndexedSlices`` is summed into a dense
    tensor of its variable's shape before Adam's (dense) update.
    """

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        dense = [(tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g, v) for g, v in grads_and_vars]
        return super().apply_gradients(dense, *args, **kwargs)


@tf.keras.utils.register_keras_serializable(package="tfrec")
class FusedAdam(DenseGradientAdam):
    """:class:`DenseGradientAdam` whose per-variable update is TensorFlow's fused Adam kernel.

    Keras' Adam writes its update as about a dozen small ops per variable (power, sqrt, two
    ``assign_add`` and an ``assign_sub`` over the whole table...); ``tf.raw_ops.ResourceApplyAdam``
    (the kernel of TF1's ``AdamOptimizer``) computes the same update -- ``m += (g - m)(1 - b1)``,
    ``v += (g^2 - v)(1 - b2)``, ``var -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)`` -- in
    one op on the same slot variables. For a model as small as MF, whose steps are dominated by
    per-op overhead, that shortens both the step and the tracing of the train function. Options
    the kernel lacks (``amsgrad``, ``adaptive_epsilon``) fall back to Keras' own update.
    """

    def update_step(self, gradient, variable):
        if self.amsgrad or self.adaptive_epsilon or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        return self._fused_update(gradient, variable, self._beta_powers(variable.dtype))

    def apply_fused(self, grads_and_vars):
        """``apply_gradients`` inside a traced training loop, in less graph.

        The same update as :meth:`apply_gradients` for every variable (same slots, ``iterations``
        incremented once), with the bias-correction powers computed once per step instead of per
        variable and without Keras' per-variable distribution and name-scope machinery: a step of a
        model as small as MF is mostly per-op overhead, and its loop traces faster. Gradients are
        float32, dense or ``tf.IndexedSlices``; the optimizer must be built for the variables; no
        distribution strategy.
        """
        pairs = list(grads_and_vars)
        if self.amsgrad or self.adaptive_epsilon:
            return self.apply_gradients(pairs)
        powers = self._beta_powers(tf.float32)
        updates = [self._fused_update(gradient, variable, powers) for gradient, variable in pairs]
        with tf.control_dependencies(updates):
            return self.iterations.assign_add(1)

    def _beta_powers(self, dtype):
        """This step's bias-correction powers ``(beta_1^t, beta_2^t)`` (t = iterations + 1)."""
        step = tf.cast(self.iterations + 1, dtype)
        return tf.pow(tf.cast(self.beta_1, dtype), step), tf.pow(tf.cast(self.beta_2, dtype), step)

    def _slots(self, variable):
        index = self._index_dict[self._var_key(variable)]
        return self._momentums[index], self._velocities[index]

    def _fused_update(self, gradient, variable, powers):
        """One variable's update given the step's ``(beta_1^t, beta_2^t)``; sparse gradients as dense."""
        m, v = self._slots(variable)
        dtype = variable.dtype
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle, beta1_power=powers[0], beta2_power=powers[1],
            lr=tf.cast(self.learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.convert_to_tensor(gradient))


@tf.keras.utils.register_keras_serializable(package="tfrec")
class LazyAdam(FusedAdam):
    """Adam that, for a sparse gradient, updates only the rows it touches ("lazy" Adam).

    The rule of TF Addons' ``LazyAdam``: for the rows of an embedding table looked up in a batch
    (a ``tf.IndexedSlices`` gradient; repeated rows summed first), ``m`` and ``v`` are updated
    and the row takes Adam's step with the global bias correction; rows not looked up keep their
    moments and values. Keras' Adam instead decays every row's moments at every step and keeps
    moving rows nobody rated in the batch along their stale momentum. Dense gradients take
    :class:`FusedAdam`'s update. For matrix factorization the lazy rule fits better: on ML-100K
    (random split) ``MatrixFactorization``'s test RMSE is ~0.001 lower over three seeds and two
    splits (``benchmarks/rating.py``), and a step's cost follows the batch, not the table size --
    why every Keras model takes it (module docstring). Works under ``tf.distribute`` strategies
    (sparse gradients are all-gathered as rows; with parameter servers each shard of a sharded
    table gets its own rows).
    """

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        # Skip DenseGradientAdam's densifying: the sparse rows are the point here.
        return tf.keras.optimizers.Adam.apply_gradients(self, grads_and_vars, *args, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad or self.adaptive_epsilon:
            return super().update_step(gradient, variable)
        return self._lazy_update(gradient, variable, self._beta_powers(variable.dtype))

    def _fused_update(self, gradient, variable, powers):
        if isinstance(gradient, tf.IndexedSlices):
            return self._lazy_update(gradient, variable, powers)
        return super()._fused_update(gradient, variable, powers)

    def _lazy_update(self, gradient, variable, powers):
        m, v = self._slots(variable)
        dtype = variable.dtype
        beta1, beta2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        rows, position = tf.unique(gradient.indices)
        g = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        m_rows = beta1 * tf.gather(m, rows) + (1.0 - beta1) * g
        v_rows = beta2 * tf.gather(v, rows) + (1.0 - beta2) * tf.square(g)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1.0 - powers[1]) / (1.0 - powers[0])
        step = alpha * m_rows / (tf.sqrt(v_rows) + tf.cast(self.epsilon, dtype))
        return tf.group(m.scatter_update(tf.IndexedSlices(m_rows, rows)),
                        v.scatter_update(tf.IndexedSlices(v_rows, rows)),
                        variable.scatter_sub(tf.IndexedSlices(step, rows)))
