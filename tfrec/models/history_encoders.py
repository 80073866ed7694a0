"""Sequence encoders for the query tower's history: [batch, N] item indices -> [batch, d].

The history is right-aligned: position N-1 holds the user's newest item, 0 is padding (on the
left, for users with fewer than N items). :class:`~tfrec.models.towers.QueryTower` embeds the
items with its history embedding and hands ``(embedded [batch, N, d], mask [batch, N])`` to one of:

* ``"mean"`` -- no layer: the tower keeps the learned position logits (its own variables, so runs
  saved before these encoders existed still load) and applies :func:`recency_weighted_mean`.
* ``"attention"`` -- :class:`AttentionHistoryEncoder`, SASRec-style (Kang & McAuley, ICDM 2018):
  learned positional embeddings, causal multi-head self-attention blocks with a position-wise
  feed-forward layer, each with residual + layer norm; the output is the hidden state at the newest
  position, which has attended to the whole (causally ordered) history.
* ``"gru"`` -- :class:`GRUHistoryEncoder`, a GRU over the history from oldest to newest whose last
  state is the output (as the TensorFlow Recommenders sequential retrieval example, after GRU4Rec).

Rows with no history at all encode to zeros.
"""

from __future__ import annotations

import tensorflow as tf

from tfrec.errors import ConfigError
from tfrec.models.initializers import glorot_uniform, random_normal, table_seed

HISTORY_ENCODERS = ("mean", "attention", "gru")


def check_history_encoder(value) -> str:
    if value not in HISTORY_ENCODERS:
        raise ConfigError(f"history_encoder must be one of {', '.join(HISTORY_ENCODERS)}, got {value!r}")
    return value


def recency_weighted_mean(items, mask, position_logits):
    """The ``"mean"`` encoding: [batch, N, d] items, [batch, N] bool mask, [N] learned position logits
    -> [batch, d], the items averaged with the softmax of the logits over each row's valid
    positions (a row with no valid position -> 0)."""
    weight = tf.exp(position_logits)[None, :] * tf.cast(mask, tf.float32)
    weight = weight / tf.maximum(tf.reduce_sum(weight, 1, keepdims=True), 1e-9)
    return tf.reduce_sum(items * weight[..., None], 1)


class AttentionHistoryEncoder(tf.keras.layers.Layer):
    """Causal self-attention over the history (SASRec-style): [batch, N, d] -> [batch, d].

    ``x = items + position_embedding``; then ``num_blocks`` times
    ``x = LN(x + MHA(x, x, causal & key-padding mask)); x = LN(x + FFN(x))``; output ``x[:, N-1]``
    times "the row has any item".

    Only position N-1 of the last block is read, so the last block runs its query, feed-forward
    layer and norms on that one position, and folds the key/value projections into the query
    side: per head h, ``score_j = (Wk_h^T q_h) . x_j + q_h . bk_h`` and
    ``out_h = Wv_h (sum_j a_hj x_j) + bv_h sum_j a_hj``. That is the same function as the
    all-positions block (``_all_positions``; equal to float rounding, tested) at O(batch N d)
    like a pooled mean instead of O(batch N d^2 + batch N^2 d). Earlier blocks (``num_blocks > 1``)
    feed every position of the next one and run in full. The weights are those of the Keras
    ``MultiHeadAttention`` layers, so configs and checkpoints are unchanged.

    Args:
      history_length: N.
      dim: d, the item embedding size.
      num_heads: attention heads (d is split between them).
      num_blocks: stacked attention blocks.
      dropout: dropout inside the blocks (training only), including on the attention probabilities.
      seed: initialiser seed.
    """

    def __init__(self, history_length: int, dim: int, num_heads: int = 2, num_blocks: int = 1,
                 dropout: float = 0.1, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.history_length, self.dim = int(history_length), int(dim)
        self.num_heads, self.num_blocks, self.dropout, self.seed = int(num_heads), int(num_blocks), float(dropout), int(seed)
        self.position_embedding = self.add_weight(name="position_embedding", shape=(self.history_length, self.dim),
                                                  initializer=random_normal(seed, "position_embedding"))
        self.key_dim = max(self.dim // self.num_heads, 1)
        self.attention = [tf.keras.layers.MultiHeadAttention(
            self.num_heads, self.key_dim, dropout=self.dropout, name=f"attention_{b}",
            kernel_initializer=glorot_uniform(seed, f"attention_{b}")) for b in range(self.num_blocks)]
        self.ffn = [[tf.keras.layers.Dense(self.dim, activation="relu", name=f"ffn_{b}_0",
                                           kernel_initializer=glorot_uniform(seed, f"ffn_{b}_0")),
                     tf.keras.layers.Dense(self.dim, name=f"ffn_{b}_1",
                                           kernel_initializer=glorot_uniform(seed, f"ffn_{b}_1"))]
                    for b in range(self.num_blocks)]
        self.norms = [(tf.keras.layers.LayerNormalization(name=f"norm_{b}_0"),
                       tf.keras.layers.LayerNormalization(name=f"norm_{b}_1")) for b in range(self.num_blocks)]
        self.drop = tf.keras.layers.Dropout(self.dropout, seed=seed)

    def build(self, input_shape):
        # The last block reads its MultiHeadAttention's variables without calling the layer, so the
        # layers are built here (the same variables and shapes their first call would create).
        # Name scopes as a first call's, so the variables keep their names (".../attention_0/query/kernel").
        shape = tf.TensorShape(input_shape)  # [batch, N, d]
        heads_shape = shape[:-1].concatenate([self.num_heads, self.key_dim])  # the output projection's input
        for attention in self.attention:
            with tf.name_scope(attention.name):
                if not attention._built_from_signature:
                    attention._build_from_signature(shape, shape)
                for dense, in_shape in ((attention._query_dense, shape), (attention._key_dense, shape),
                                        (attention._value_dense, shape), (attention._output_dense, heads_shape)):
                    if not dense.built:
                        # MultiHeadAttention clones its one initializer (seed included) for the
                        # query, key, value and output kernels, which then start equal: each gets
                        # its own seed here.
                        dense.kernel_initializer = glorot_uniform(self.seed, f"{attention.name}_{dense.name}")
                        with tf.name_scope(dense.name):
                            dense.build(in_shape)
        super().build(input_shape)

    def _attend(self, mask):
        """[batch, N, N]: query i attends to key j (the full blocks' mask)."""
        n = self.history_length
        causal = tf.linalg.band_part(tf.ones([n, n], tf.bool), -1, 0)  # query i sees keys <= i
        # Queries at padded positions keep their own key so no softmax row is empty.
        return causal[None] & (mask[:, None, :] | tf.eye(n, dtype=tf.bool)[None])

    def _attend_last(self, mask):
        """Row N-1 of ``_attend`` without the [batch, N, N] tensor: the valid keys and N-1 itself."""
        return mask | tf.equal(tf.range(self.history_length), self.history_length - 1)[None]

    def _block(self, b, x, attend, training):
        """Block b at every position: [batch, N, d] -> [batch, N, d]."""
        return self._residual_ffn(b, x, self.attention[b](x, x, attention_mask=attend, training=training), training)

    def _residual_ffn(self, b, x, attended, training):
        """The rest of block b after its attention: ``LN(x + attended)``, then ``LN(h + FFN(h))``."""
        (dense0, dense1), (norm0, norm1) = self.ffn[b], self.norms[b]
        h = norm0(x + self.drop(attended, training=training))
        return norm1(h + self.drop(dense1(dense0(h)), training=training))

    def _last_query_attention(self, b, x, attend_last, training):
        """Block b's MultiHeadAttention output at query N-1 only: [batch, N, d] -> [batch, d].

        ``attend_last`` [batch, N] is that query's key mask. Same floats as the Keras layer up to
        summation order: the query is projected, mapped back to input space through the key kernel
        and dotted with the raw inputs; the probabilities pool the raw inputs, which the value
        kernel then projects once.
        """
        mha = self.attention[b]
        wq, bq = mha._query_dense.kernel, mha._query_dense.bias  # [d, H, k], [H, k]
        wk, bk = mha._key_dense.kernel, mha._key_dense.bias
        wv, bv = mha._value_dense.kernel, mha._value_dense.bias  # [d, H, v], [H, v]
        wo, bo = mha._output_dense.kernel, mha._output_dense.bias  # [H, v, d], [d]
        q = (tf.einsum("bd,dhk->bhk", x[:, -1], wq) + bq) * (1.0 / float(self.key_dim) ** 0.5)
        # q . bk is the same for every key (it cancels in the softmax); kept so bk's gradient is
        # the (zero) one of the full layer rather than missing.
        # Batched matmuls over [batch, heads, d] x [batch, N, d] (measured faster than the einsums).
        scores = tf.matmul(tf.einsum("bhk,dhk->bhd", q, wk), x, transpose_b=True) + tf.einsum("bhk,hk->bh", q, bk)[..., None]
        scores += (1.0 - tf.cast(attend_last, scores.dtype))[:, None, :] * -1e9  # as Keras' masked softmax
        probs = self.drop(tf.nn.softmax(scores, axis=-1), training=training)  # dropout on the probabilities, as MHA
        pooled = tf.matmul(probs, x)  # [batch, heads, d]
        # With dropout the probabilities no longer sum to 1: bv is weighted by their sum, as in MHA.
        values = tf.einsum("bhd,dhv->bhv", pooled, wv) + bv[None] * tf.reduce_sum(probs, -1)[..., None]
        return tf.einsum("bhv,hvo->bo", values, wo) + bo

    def _all_positions(self, items, mask, training=False):
        """The reference computation: every block at every position, [batch, N, d] (call reads N-1)."""
        x, attend = items + self.position_embedding[None], self._attend(mask)
        for b in range(self.num_blocks):
            x = self._block(b, x, attend, training)
        return x

    def call(self, items, mask, training=False):
        x = items + self.position_embedding[None]
        if self.num_blocks > 1:
            attend = self._attend(mask)
            for b in range(self.num_blocks - 1):
                x = self._block(b, x, attend, training)
        b = self.num_blocks - 1
        # Position N-1 kept as a [batch, 1, d] slice: the norms fix their input rank when built.
        attended = self._last_query_attention(b, x, self._attend_last(mask), training)[:, None, :]
        h = self._residual_ffn(b, x[:, -1:], attended, training)
        has_any = tf.cast(tf.reduce_any(mask, axis=1, keepdims=True), h.dtype)
        return h[:, 0] * has_any

    def get_config(self):
        return {**super().get_config(), "history_length": self.history_length, "dim": self.dim,
                "num_heads": self.num_heads, "num_blocks": self.num_blocks, "dropout": self.dropout,
                "seed": self.seed}


class GRUHistoryEncoder(tf.keras.layers.Layer):
    """A GRU over the history, oldest to newest: [batch, N, d] -> [batch, d] (its last state).

    Padded positions are masked out (skipped), so the state is that after the user's newest item;
    a row with no items keeps the zero initial state.

    Args:
      dim: d, the state size (= the item embedding size).
      seed: initialiser seed.
    """

    def __init__(self, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.seed = int(dim), int(seed)
        self.gru = tf.keras.layers.GRU(self.dim, name="gru",
                                       kernel_initializer=glorot_uniform(seed, "gru_kernel"),
                                       recurrent_initializer=tf.keras.initializers.Orthogonal(seed=table_seed(seed, "gru_recurrent")))

    def build(self, input_shape):
        strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
        if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
            # TensorFlow's GRU op needs its kernels on one task, and a parameter-server strategy places
            # variables round-robin over the ps tasks ("Cannot colocate nodes" at the first step): all
            # of the GRU's variables go beside one untracked scalar (rank 0: never partitioned).
            anchor = tf.Variable(0.0, trainable=False, name="gru_placement")
            with strategy.extended.colocate_vars_with(anchor):
                self.gru.build(input_shape)
        super().build(input_shape)

    def call(self, items, mask, training=False):
        out = self.gru(items, mask=mask, training=training)
        has_any = tf.cast(tf.reduce_any(mask, axis=1, keepdims=True), out.dtype)
        return out * has_any

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "seed": self.seed}


def make_history_encoder(kind: str, history_length: int, dim: int, seed: int = 0):
    """The encoder layer for ``kind`` (None for ``"mean"``, which the query tower pools itself)."""
    kind = check_history_encoder(kind)
    if kind == "attention":
        return AttentionHistoryEncoder(history_length, dim, seed=seed, name="history_attention")
    if kind == "gru":
        return GRUHistoryEncoder(dim, seed=seed, name="history_gru")
    return None


__all__ = ["AttentionHistoryEncoder", "GRUHistoryEncoder", "HISTORY_ENCODERS", "check_history_encoder",
           "make_history_encoder", "recency_weighted_mean"]
