"""Sequence encoders for the query tower's history: [batch, N] item indices -> [batch, d].

The history is right-aligned: position N-1 holds the user's newest item, 0 is padding (on the
left, for users with fewer than N items). :class:`~tfrec.models.towers.QueryTower` embeds the
items with its history embedding and hands ``(embedded [batch, N, d], mask [batch, N])`` to one of:

* ``"mean"`` -- no layer here: the tower's learned-recency-weighted mean (its own variables, so runs
  saved before these encoders existed still load).
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

HISTORY_ENCODERS = ("mean", "attention", "gru")


def check_history_encoder(value) -> str:
    if value not in HISTORY_ENCODERS:
        raise ConfigError(f"history_encoder must be one of {', '.join(HISTORY_ENCODERS)}, got {value!r}")
    return value


class AttentionHistoryEncoder(tf.keras.layers.Layer):
    """Causal self-attention over the history (SASRec-style): [batch, N, d] -> [batch, d].

    ``x = items + position_embedding``; then ``num_blocks`` times
    ``x = LN(x + MHA(x, x, causal & key-padding mask)); x = LN(x + FFN(x))``; output ``x[:, N-1]``
    times "the row has any item".

    Args:
      history_length: N.
      dim: d, the item embedding size.
      num_heads: attention heads (d is split between them).
      num_blocks: stacked attention blocks.
      dropout: dropout inside the blocks (training only).
      seed: initialiser seed.
    """

    def __init__(self, history_length: int, dim: int, num_heads: int = 2, num_blocks: int = 1,
                 dropout: float = 0.1, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.history_length, self.dim = int(history_length), int(dim)
        self.num_heads, self.num_blocks, self.dropout, self.seed = int(num_heads), int(num_blocks), float(dropout), int(seed)
        init = tf.keras.initializers.RandomNormal(stddev=0.05, seed=seed)
        self.position_embedding = self.add_weight(name="position_embedding", shape=(self.history_length, self.dim),
                                                  initializer=init)
        key_dim = max(self.dim // self.num_heads, 1)
        self.attention = [tf.keras.layers.MultiHeadAttention(
            self.num_heads, key_dim, dropout=self.dropout, name=f"attention_{b}",
            kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + 10 + b)) for b in range(self.num_blocks)]
        self.ffn = [[tf.keras.layers.Dense(self.dim, activation="relu", name=f"ffn_{b}_0",
                                           kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + 20 + b)),
                     tf.keras.layers.Dense(self.dim, name=f"ffn_{b}_1",
                                           kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + 30 + b))]
                    for b in range(self.num_blocks)]
        self.norms = [(tf.keras.layers.LayerNormalization(name=f"norm_{b}_0"),
                       tf.keras.layers.LayerNormalization(name=f"norm_{b}_1")) for b in range(self.num_blocks)]
        self.drop = tf.keras.layers.Dropout(self.dropout, seed=seed)

    def call(self, items, mask, training=False):
        x = items + self.position_embedding[None, :, :]
        n = self.history_length
        causal = tf.linalg.band_part(tf.ones([n, n], tf.bool), -1, 0)  # query i sees keys <= i
        # Queries at padded positions keep their own key so no softmax row is empty.
        attend = causal[None] & (mask[:, None, :] | tf.eye(n, dtype=tf.bool)[None])
        for attention, (dense0, dense1), (norm0, norm1) in zip(self.attention, self.ffn, self.norms):
            x = norm0(x + self.drop(attention(x, x, attention_mask=attend, training=training), training=training))
            x = norm1(x + self.drop(dense1(dense0(x)), training=training))
        has_any = tf.cast(tf.reduce_any(mask, axis=1, keepdims=True), x.dtype)
        return x[:, -1, :] * has_any

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
                                       kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed),
                                       recurrent_initializer=tf.keras.initializers.Orthogonal(seed=seed + 1))

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
           "make_history_encoder"]
