"""In-batch softmax retrieval that stays the same loss when the batch is split across replicas.

TFRS's ``tfrs.tasks.Retrieval`` scores each query against the candidates of its *own replica's*
batch, so with N replicas (GPUs, or workers of ``MultiWorkerMirroredStrategy``) of batch B/N a
query sees B/N - 1 negatives instead of B - 1 (its cross-replica concat helper is never called), and
``tfrs.models.Model.train_step`` adds the regularisation loss on every replica, so the optimizer,
which sums gradients over replicas, applies it N times. :class:`GlobalRetrieval` and
:class:`ReplicaScaledSteps` fix both in tfrec's own code (TFRS is not patched):

* the candidates, their sampling probabilities (logQ) and ids are gathered from all replicas
  (``ReplicaContext.all_gather``, differentiable), so every query is scored against the global
  batch's candidates, its positive at ``replica_id * local_batch + row``;
* the loss is the *sum* of the per-example cross-entropies of this replica's queries (TFRS's
  default reduction): the optimizer's cross-replica gradient sum is then exactly the gradient of
  the single-process loss over the global batch, so N workers with batch B/N take the same step as
  one worker with batch B -- no division by N is needed, and none is applied;
* regularisation losses are divided by the number of replicas before the gradient.

Outside a strategy (or with one replica) the task computes what ``tfrs.tasks.Retrieval`` does.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf
import tensorflow_recommenders as tfrs


class SampledCandidates:
    """Catalog items sampled for one step, scored beside the batch's candidates (mixed negative
    sampling, Yang et al. 2020, "Mixed Negative Sampling for Learning Two-tower Neural Networks").

    Args:
      embeddings: [M, d] the sampled items' candidate embeddings (this replica's own sample).
      ids: [M] their ids (the vocabulary indices the batch's ``candidate_ids`` use), for the
        accidental-hit mask: a sampled item equal to a row's positive is not a negative of it.
      probability: [M] their in-batch sampling probability, the quantity the batch's
        ``candidate_sampling_probability`` holds (an item's share of training interactions).
      sampler_probability: the probability the catalog sampler draws any one item per draw
        (uniform over n items, with replacement: ``1 / n``).

    :meth:`log_proposal` is the logQ correction of the mixed sample. Every column -- a batch
    candidate or a sampled item -- is an item ``j`` drawn by the union of ``B`` batch draws
    (``p_j`` each) and ``M`` catalog draws (``r_j``), so each column is corrected by the log of one
    draw's mixture probability ``q_j = (B p_j + M r_j) / (B + M)`` (the expected count of ``j`` in
    the B + M columns, divided by B + M; the MNS paper's mixture distribution). With ``M = 0`` this
    is ``log p_j``, today's in-batch correction. A per-source correction (``log p_j`` on batch
    columns, ``log r_j`` on sampled ones) would ignore that a popular item also reaches the sampled
    columns and a rare one the batch.
    """

    def __init__(self, embeddings, ids, probability, sampler_probability: float):
        self.embeddings = embeddings
        self.ids = ids
        self.probability = probability
        self.sampler_probability = float(sampler_probability)

    def log_proposal(self, batch_probability):
        """``log q`` [B + M] for the batch's candidates ([B] probabilities, gathered over replicas
        when the loss is) followed by the sampled items."""
        batch = tf.cast(tf.shape(batch_probability)[0], tf.float32)
        draws = tf.cast(tf.shape(self.embeddings)[0], tf.float32)
        p = tf.concat([tf.cast(batch_probability, tf.float32), tf.cast(self.probability, tf.float32)], 0)
        return tf.math.log((batch * p + draws * self.sampler_probability) / (batch + draws))


def _replica_context():
    """(replica context, replicas in sync); (None, 1) in a cross-replica context."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return None, 1
    return ctx, int(ctx.num_replicas_in_sync)


class GlobalRetrieval(tf.keras.layers.Layer):
    """Sampled-softmax retrieval loss over the global batch's candidates.

    Computes, for this replica's queries ``q`` [b, d] and the candidates ``c`` [N*b, d] gathered
    from all N replicas: ``scores = q c^T / temperature - log p(c)`` (logQ), accidental hits
    (another row's positive with the same candidate id) masked out, optionally only the
    ``num_hard_negatives`` hardest negatives kept, and ``sum_i CE(onehot(offset + i), scores_i)``.

    Args:
      temperature: divides the scores (None: 1).
      num_hard_negatives: keep the top-k negatives per query (None: all).
      remove_accidental_hits: mask candidates whose id equals the query's positive id.

    Call args (shapes per replica): ``query_embeddings`` [b, d], ``candidate_embeddings`` [b, d]
    (row i is query i's positive), ``sample_weight`` [b] or None,
    ``candidate_sampling_probability`` [b] or None, ``candidate_ids`` [b] or None,
    ``gather`` (default True): False scores against this replica's candidates only. Every replica
    must hold the same number of rows when gathering (training batches are cut evenly).
    ``sampled`` (a :class:`SampledCandidates` of M catalog items, or None): scored as M more
    columns after the batch's (scores [b, N*b + M]); every column's logQ correction is then the
    mixture's (:meth:`SampledCandidates.log_proposal`) and a sampled item equal to a row's positive
    is masked like an in-batch accidental hit. Returns the scalar loss of this replica's queries.
    """

    def __init__(self, temperature: Optional[float] = None, num_hard_negatives: Optional[int] = None,
                 remove_accidental_hits: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.num_hard_negatives = num_hard_negatives
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self._loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True,
                                                             reduction=tf.keras.losses.Reduction.SUM)

    def call(self, query_embeddings, candidate_embeddings, sample_weight=None, candidate_sampling_probability=None,
             candidate_ids=None, compute_metrics: bool = False, gather: bool = True, sampled=None):
        del compute_metrics  # no factorized metrics: they cannot run under every strategy
        ctx, replicas = _replica_context()
        rows = tf.shape(query_embeddings)[0]
        offset = 0
        candidates = candidate_embeddings
        if gather and replicas > 1:
            # One float32 all-gather per call: embeddings, probability and id side by side (ids as
            # float are exact below 2**24; vocabulary indices are).
            parts = [tf.cast(candidate_embeddings, tf.float32)]
            if candidate_sampling_probability is not None:
                parts.append(tf.cast(candidate_sampling_probability, tf.float32)[:, None])
            if candidate_ids is not None:
                parts.append(tf.cast(candidate_ids, tf.float32)[:, None])
            gathered = ctx.all_gather(tf.concat(parts, axis=1), axis=0)
            dim = tf.shape(candidate_embeddings)[1]
            candidates = tf.cast(gathered[:, :dim], candidate_embeddings.dtype)
            column = dim
            if candidate_sampling_probability is not None:
                candidate_sampling_probability = gathered[:, column]
                column += 1
            if candidate_ids is not None:
                candidate_ids = gathered[:, column]
            offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * rows
        scores = tf.linalg.matmul(query_embeddings, candidates, transpose_b=True)
        labels = tf.one_hot(offset + tf.range(rows), tf.shape(candidates)[0], dtype=scores.dtype)
        if sampled is not None:  # the catalog sample's columns after the batch's (local: not gathered)
            scores = tf.concat([scores, tf.linalg.matmul(query_embeddings, sampled.embeddings, transpose_b=True)], 1)
            labels = tf.pad(labels, [[0, 0], [0, tf.shape(sampled.embeddings)[0]]])
            if candidate_ids is not None:
                candidate_ids = tf.concat([candidate_ids, tf.cast(sampled.ids, candidate_ids.dtype)], 0)
        if self.temperature is not None:
            scores = scores / self.temperature
        if sampled is not None and candidate_sampling_probability is not None:
            scores = scores - sampled.log_proposal(candidate_sampling_probability)[None, :]
        elif candidate_sampling_probability is not None:
            scores = tfrs.layers.loss.SamplingProbablityCorrection()(scores, candidate_sampling_probability)
        if self.remove_accidental_hits:
            if candidate_ids is None:
                raise ValueError("remove_accidental_hits needs candidate_ids")
            scores = tfrs.layers.loss.RemoveAccidentalHits()(labels, scores, candidate_ids)
        if self.num_hard_negatives is not None:
            scores, labels = tfrs.layers.loss.HardNegativeMining(self.num_hard_negatives)(scores, labels)
        return self._loss(y_true=labels, y_pred=scores, sample_weight=sample_weight)

    def ensemble_losses(self, pairs, sample_weight=None, candidate_sampling_probability=None, candidate_ids=None,
                        gather: bool = True, sampled=None) -> list:
        """The loss of each ``(query_embeddings, candidate_embeddings)`` pair of an ensemble trained on
        one batch: ``[self(q, c, ...) for q, c in pairs]``, with what the pairs share -- the labels,
        the logQ correction and the accidental-hit mask, each [b, b] (or [b, b + M] with a catalog
        sample) -- computed once, not once per pair. The scores are the same floats:
        ``s / T - log p + hits * MIN_FLOAT`` is added as ``s / T + (hits * MIN_FLOAT - log p)``,
        exact for every entry (``MIN_FLOAT`` absorbs ``log p``). Across replicas or with hard
        negatives each pair takes :meth:`call`. ``sampled``: None, or one :class:`SampledCandidates`
        per pair (each member's embeddings of the *same* sampled items: ids and probabilities are
        read from the first)."""
        _, replicas = _replica_context()
        members = sampled if sampled is not None else [None] * len(pairs)
        if len(pairs) == 1 or (gather and replicas > 1) or self.num_hard_negatives is not None:
            return [self(q, c, sample_weight=sample_weight, candidate_sampling_probability=candidate_sampling_probability,
                         candidate_ids=candidate_ids, gather=gather, sampled=s) for (q, c), s in zip(pairs, members)]
        first = pairs[0][1]
        rows = tf.shape(pairs[0][0])[0]
        extra = tf.shape(sampled[0].embeddings)[0] if sampled is not None else 0
        labels = tf.one_hot(tf.range(rows), tf.shape(first)[0] + extra, dtype=first.dtype)
        bias = None
        if candidate_sampling_probability is not None and sampled is not None:
            bias = -sampled[0].log_proposal(candidate_sampling_probability)[None, :]
        elif candidate_sampling_probability is not None:  # tfrs SamplingProbablityCorrection
            bias = -tf.math.log(tf.clip_by_value(candidate_sampling_probability, 1e-6, 1.0))[None, :]
        if self.remove_accidental_hits:  # tfrs RemoveAccidentalHits (row i's positive is candidate i)
            if candidate_ids is None:
                raise ValueError("remove_accidental_hits needs candidate_ids")
            ids = tf.expand_dims(candidate_ids, 1)
            columns = ids if sampled is None else tf.concat([ids, tf.cast(sampled[0].ids, ids.dtype)[:, None]], 0)
            hits = (tf.cast(tf.equal(ids[:rows], tf.transpose(columns)), labels.dtype) - labels) * tfrs.layers.loss.MIN_FLOAT
            bias = hits if bias is None else bias + hits
        losses = []
        for (query_embeddings, candidate_embeddings), member in zip(pairs, members):
            scores = tf.linalg.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
            if member is not None:
                scores = tf.concat([scores, tf.linalg.matmul(query_embeddings, member.embeddings, transpose_b=True)], 1)
            if self.temperature is not None:
                scores = scores / self.temperature
            if bias is not None:
                scores = scores + bias
            losses.append(self._loss(y_true=labels, y_pred=scores, sample_weight=sample_weight))
        return losses

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "num_hard_negatives": self.num_hard_negatives, "remove_accidental_hits": self.remove_accidental_hits}


class ReplicaScaledSteps:
    """``train_step``/``test_step`` for ``tfrs.models.Model`` subclasses under any strategy.

    Mixed in before ``tfrs.models.Model``. The difference from TFRS's steps: regularisation losses
    are divided by the number of replicas (the optimizer sums gradients over replicas, so they
    would count N times otherwise). The reported values are this replica's share: Keras sums them
    over all replicas (its ``"auto"`` reduction outside TPUs), so every worker logs -- and early
    stopping compares -- the global batch's loss, the same number one process would report.
    """

    # No autograph: the steps (and the towers, losses and layers they call) have no Python control
    # flow on tensors, and converting their source to graph code costs ~2 s of CPU per process.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs):
        _, replicas = _replica_context()
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = self._regularization_share(replicas)
            total_loss = loss + regularization_loss
        variables = self.trainable_variables  # one walk of the layer tree per trace, not two
        gradients = tape.gradient(total_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._step_metrics(loss, regularization_loss)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, inputs):
        _, replicas = _replica_context()
        loss = self.compute_loss(inputs, training=False)
        return self._step_metrics(loss, self._regularization_share(replicas))

    def _regularization_share(self, replicas: int):
        if not self.losses:
            return tf.constant(0.0)
        return tf.add_n([tf.reduce_sum(x) for x in self.losses]) / float(replicas)

    def _step_metrics(self, loss, regularization_loss) -> dict:
        metrics = {metric.name: metric.result() for metric in self.metrics}
        metrics.update(loss=loss, regularization_loss=regularization_loss, total_loss=loss + regularization_loss)
        return metrics
