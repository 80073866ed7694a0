"""The towers of the two-tower model: query (user) and candidate (item) towers and their ensemble.

Each maps a feature dict with raw string ids to an L2-normalised embedding [batch, d];
:class:`~tfrec.models.two_tower.TwoTower` trains them with a TFRS retrieval task.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.models.history_encoders import check_history_encoder, make_history_encoder, recency_weighted_mean
from tfrec.models.initializers import glorot_uniform, seeded_embedding
from tfrec.models.layers import side_feature_layers, string_lookup

QUERY_FEATURES = (F.USER_ID,) + F.USER_FEATURES
CANDIDATE_FEATURES = (F.ITEM_ID,) + F.ITEM_FEATURES
# Training-only query input: the example's item index, so its history can leave the target out.
TARGET_INDEX = "target_item_index"
# Training-only query input: [batch, N] history items already looked up (an ensemble's members
# would each compute the same window otherwise).
HISTORY_ITEMS = "history_items"
# Encoded (string-free) tower inputs: ids as vocabulary indices, side features as their layers'
# ``encode`` output. A feature dict holding USER_INDEX / ITEM_INDEX is encoded throughout; the
# training pipeline encodes once per fit (TwoTower), so the train step runs no string op and
# can be XLA-compiled. Raw dicts (serving, exports) are encoded in-graph by ``call``.
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
YEAR_SCALED = "year_scaled"


def _untracked(layer, **values) -> None:
    """Set plain-data attributes (vocabularies, specs) outside Keras' attribute tracking: a tracked
    list or dict is wrapped and every one of its entries is walked each time Keras collects the
    layer tree (thousands of times while the train step is traced)."""
    for name, value in values.items():
        object.__setattr__(layer, name, value)


def _mlp(sizes, name, seed):
    layers = []
    for j, s in enumerate(sizes):
        last = j == len(sizes) - 1
        layers.append(tf.keras.layers.Dense(s, activation=None if last else "relu", name=f"{name}_{j}",
                                            kernel_initializer=glorot_uniform(seed, f"{name}_{j}")))
    return layers


class QueryTower(tf.keras.Model):
    """User tower: id embedding (+ demographics, + pooled recent history) -> MLP -> [batch, d].

    Inputs: dict with ``user_id`` tf.string [batch] and, when ``feature_vocabularies`` has them,
    ``gender``, ``occupation``, ``zip`` tf.string [batch] and ``age`` tf.int64 [batch]; or, with
    ``feature_specs`` (a schema.json dataset's user features), those features by their own names
    and types (:func:`tfrec.models.layers.schema_feature_layers`).

    With ``history_length`` N > 0 a weighted mean of the embeddings of the user's N most recent
    items is a feature too (one learned weight per recency position, softmax-normalised over the
    positions the user has). At serving time (no ``timestamp`` input) those are the user's last N training
    items (the ``history`` variable, [n_users + 1, N] item-vocabulary indices, 0 = padding, exported
    with the model). In training, an example with ``timestamp`` t sees only the N items the user
    rated up to t, its own item left out (:meth:`set_training_sequences`): the query never contains
    its own target or later items, so the model learns to predict the next item from the recent
    past, which is what it is asked at serving time. A ``history_items`` input ([batch, N], already
    looked up) is used as is: TwoTower computes it once for all members of an ensemble.

    ``id_dropout`` replaces the user id with the out-of-vocabulary id for a share of training
    examples, so the OOV row learns "a user we only know by demographics" -- the cold-start path.

    ``history_encoder`` turns the [batch, N] history into one vector: ``"mean"`` (the weighted mean
    above), ``"attention"`` (causal self-attention with positional embeddings, SASRec-style) or
    ``"gru"`` (a GRU's last state); see :mod:`tfrec.models.history_encoders`.

    ``item_embedding``: an existing ``[n_items + 1, embedding_dim]`` embedding layer to embed the
    history items with (TwoTower passes its candidate tower's item-id embedding, so an item is one
    vector whether it is in the history or a candidate); None creates a separate table.
    """

    def __init__(self, user_vocabulary: Sequence[str], feature_vocabularies: dict, embedding_dim: int,
                 layer_sizes: Sequence[int], id_dropout: float = 0.0, n_items: int = 0, history_length: int = 0,
                 normalize: bool = True, seed: int = 0, item_embedding: Optional[tf.keras.layers.Embedding] = None,
                 history_encoder: str = "mean", feature_specs: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        self.history_encoder = check_history_encoder(history_encoder)
        _untracked(self, user_vocabulary=list(user_vocabulary),
                   feature_vocabularies={k: list(v) for k, v in feature_vocabularies.items()},
                   feature_specs=dict(feature_specs) if feature_specs else None)
        self.embedding_dim = int(embedding_dim)
        self.layer_sizes = list(layer_sizes)
        self.id_dropout = float(id_dropout)
        self.n_items = int(n_items)
        self.history_length = int(history_length)
        self.normalize = bool(normalize)
        self.seed = int(seed)
        self.user_lookup = string_lookup(self.user_vocabulary, "user_lookup")
        self.user_embedding = seeded_embedding(len(self.user_vocabulary) + 1, embedding_dim, name="user_embedding",
                                               seed=seed)
        self.features = side_feature_layers(self.feature_vocabularies, embedding_dim // 2 or 1, seed, prefix="q_",
                                            specs=self.feature_specs)
        if self.history_length:
            self.history_embedding = item_embedding if item_embedding is not None else seeded_embedding(
                self.n_items + 1, embedding_dim, name="history_embedding", seed=seed)
            self.history = tf.Variable(tf.zeros([len(self.user_vocabulary) + 1, self.history_length], tf.int64),
                                       trainable=False, name="history_table")
            # One learned logit per recency position (starting as a plain mean): lets the model
            # weigh the latest items more, which is where most of the next-item signal is.
            if self.history_encoder == "mean":
                self.history_position_logits = tf.Variable(tf.zeros([self.history_length]),
                                                           name="history_position_logits")
            self.sequence_encoder = make_history_encoder(self.history_encoder, self.history_length, self.embedding_dim,
                                                         seed=seed + 2)
        # Training-only sequences (see set_training_sequences); plain tensors, not exported.
        object.__setattr__(self, "_sequences", None)
        self.mlp = _mlp(self.layer_sizes, "query_mlp", seed)

    def set_history(self, table: np.ndarray) -> None:
        """The serving history: [n_users + 1, N] item indices of each user's last N items."""
        self.history.assign(table.astype(np.int64))

    def set_training_sequences(self, keys: np.ndarray, items: np.ndarray, starts: np.ndarray) -> None:
        """Every training interaction ordered by (user, time), for per-example history in training.

        Args:
          keys: int64 [n] ``user_index * 2**32 + timestamp``, sorted ascending.
          items: int64 [n] item indices in that order.
          starts: int64 [n_users + 1] position of each user's first interaction in ``keys``.
        """
        object.__setattr__(self, "_sequences", (tf.constant(keys, tf.int64), tf.constant(items, tf.int64),
                                                tf.constant(starts, tf.int64)))

    def _history_items(self, idx, inputs):
        """[batch, N] item indices (0 = none) of the history each example may see.

        With ``timestamp`` and ``target_item_index`` (training): the user's last N items rated at or
        before the example's time, the example's own item left out. Ratings given in the same
        second count as history -- on ML-100K half of a user's consecutive ratings share a second,
        and at serving time those same-second items are in the user's history too, so leaving them
        out in training would teach the model a history it never sees when serving. With
        ``timestamp`` alone: items strictly before it. Without ``timestamp`` (serving): the stored
        last-N table.
        """
        seqs = self._sequences
        if seqs is None or F.TIMESTAMP not in inputs:
            return tf.gather(self.history, idx)
        keys, items, starts = seqs
        n = self.history_length
        target = inputs.get(TARGET_INDEX)
        t = tf.clip_by_value(tf.cast(inputs[F.TIMESTAMP], tf.int64), 0, (1 << 32) - 1)  # as the keys are
        query = tf.cast(idx, tf.int64) * (1 << 32) + t
        start = tf.gather(starts, idx)
        if target is None:
            end = tf.searchsorted(keys, query, side="left", out_type=tf.int64)
            return self._window(items, start, end, n)
        # N + 1 slots up to and including the example's second; drop the target's (latest) slot,
        # or the oldest slot when the target is not among them, keeping N right-aligned items.
        end = tf.searchsorted(keys, query, side="right", out_type=tf.int64)
        window = self._window(items, start, end, n + 1)
        is_target = tf.equal(window, tf.cast(target, tf.int64)[:, None]) & (window > 0)
        last = n - tf.argmax(tf.reverse(tf.cast(is_target, tf.int32), [1]), axis=1, output_type=tf.int64)
        drop = tf.where(tf.reduce_any(is_target, 1), last, -1)
        k = tf.range(n, dtype=tf.int64)[None, :]
        return tf.gather(window, k + tf.cast(k >= drop[:, None], tf.int64), batch_dims=1)

    @staticmethod
    def _window(items, start, end, n):
        """[batch, n]: items at positions end-n .. end-1, 0 where before the user's first."""
        pos = end[:, None] - n + tf.range(n, dtype=tf.int64)[None, :]
        valid = (pos >= start[:, None]) & (pos >= 0)
        picked = tf.gather(items, tf.maximum(pos, 0))
        return tf.where(valid, picked, tf.zeros_like(picked))

    def encode(self, inputs) -> dict:
        """Raw feature dict -> the encoded dict :meth:`call` also takes (``user_index``, side
        features' indices / values, ``history_items``): every string op of the tower."""
        if USER_INDEX in inputs:
            return inputs
        idx = self.user_lookup(inputs[F.USER_ID])
        encoded = {USER_INDEX: idx}
        for name, layer in self.features.items():
            if name in inputs:
                encoded[name] = layer.encode(inputs[name])
        if self.history_length:
            hist = inputs[HISTORY_ITEMS] if HISTORY_ITEMS in inputs else self._history_items(idx, inputs)
            encoded[HISTORY_ITEMS] = hist
        return encoded

    def call(self, inputs, training=False):
        inputs = self.encode(inputs)
        idx = inputs[USER_INDEX]
        if training and self.id_dropout > 0:
            drop = tf.random.uniform(tf.shape(idx), seed=self.seed) < self.id_dropout
            idx_emb = tf.where(drop, tf.zeros_like(idx), idx)
        else:
            idx_emb = idx
        parts = [self.user_embedding(idx_emb)]
        for name, layer in self.features.items():
            if name in inputs:
                parts.append(layer.embed(inputs[name]))
        if self.history_length:
            parts.append(self._encode_history(inputs[HISTORY_ITEMS], training))
        x = tf.concat(parts, axis=-1)
        for dense in self.mlp:
            x = dense(x)
        return tf.math.l2_normalize(x, axis=-1) if self.normalize else x

    def _encode_history(self, hist, training):
        """[batch, N] item indices -> [batch, embedding_dim] (all-padding rows -> 0)."""
        embedded = self.history_embedding(hist)
        if self.sequence_encoder is not None:
            return self.sequence_encoder(embedded, hist > 0, training=training)
        return recency_weighted_mean(embedded, hist > 0, self.history_position_logits)

    def get_config(self):
        return {"user_vocabulary": self.user_vocabulary, "feature_vocabularies": self.feature_vocabularies,
                "embedding_dim": self.embedding_dim, "layer_sizes": self.layer_sizes, "id_dropout": self.id_dropout,
                "n_items": self.n_items, "history_length": self.history_length, "normalize": self.normalize,
                "seed": self.seed, "history_encoder": self.history_encoder, "feature_specs": self.feature_specs}


class CandidateTower(tf.keras.Model):
    """Item tower: id embedding (+ pooled genre embeddings, + release-year bucket embedding and a
    normalised year) -> MLP -> [batch, d].

    Inputs: dict with ``item_id`` tf.string [batch] and, when ``feature_vocabularies`` has genres,
    ``genres`` tf.string [batch, MAX_GENRES] and ``year`` tf.int64 [batch]; or, with
    ``feature_specs``, a schema.json dataset's item features by their own names and types.
    """

    def __init__(self, item_vocabulary: Sequence[str], feature_vocabularies: dict, embedding_dim: int,
                 layer_sizes: Sequence[int], normalize: bool = True, seed: int = 0,
                 feature_specs: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        _untracked(self, item_vocabulary=list(item_vocabulary),
                   feature_vocabularies={k: list(v) for k, v in feature_vocabularies.items()},
                   feature_specs=dict(feature_specs) if feature_specs else None)
        self.embedding_dim = int(embedding_dim)
        self.layer_sizes = list(layer_sizes)
        self.normalize = bool(normalize)
        self.seed = int(seed)
        self.item_lookup = string_lookup(self.item_vocabulary, "item_lookup")
        self.item_embedding = seeded_embedding(len(self.item_vocabulary) + 1, embedding_dim, name="item_embedding",
                                               seed=seed)
        self.features = side_feature_layers(self.feature_vocabularies, embedding_dim // 2 or 1, seed, prefix="c_",
                                            specs=self.feature_specs)
        self.mlp = _mlp(self.layer_sizes, "candidate_mlp", seed + 100)

    def encode(self, inputs) -> dict:
        """Raw feature dict -> the encoded dict :meth:`call` also takes (``item_index``, side
        features' indices / values, ``year_scaled``): every string op of the tower."""
        if ITEM_INDEX in inputs:
            return inputs
        encoded = {ITEM_INDEX: self.item_lookup(inputs[F.ITEM_ID])}
        for name, layer in self.features.items():
            if name in inputs:
                encoded[name] = layer.encode(inputs[name])
        if F.YEAR in self.features and F.YEAR in inputs and not self.feature_specs:  # MovieLens's year
            year = tf.cast(inputs[F.YEAR], tf.float32)
            known = tf.cast(year > 0, tf.float32)
            encoded[YEAR_SCALED] = tf.stack([known * (year - 1985.0) / 20.0, known], axis=-1)
        return encoded

    def call(self, inputs, training=False):
        inputs = self.encode(inputs)
        parts = [self.item_embedding(inputs[ITEM_INDEX])]
        for name, layer in self.features.items():
            if name in inputs:
                parts.append(layer.embed(inputs[name]))
        if YEAR_SCALED in inputs:
            parts.append(inputs[YEAR_SCALED])
        x = tf.concat(parts, axis=-1)
        for dense in self.mlp:
            x = dense(x)
        return tf.math.l2_normalize(x, axis=-1) if self.normalize else x

    def get_config(self):
        return {"item_vocabulary": self.item_vocabulary, "feature_vocabularies": self.feature_vocabularies,
                "embedding_dim": self.embedding_dim, "layer_sizes": self.layer_sizes, "normalize": self.normalize,
                "seed": self.seed, "feature_specs": self.feature_specs}


class TowerEnsemble(tf.keras.Model):
    """k towers as one: their L2-normalised outputs concatenated and scaled by ``1/sqrt(k)``.

    Output [batch, k * d], unit norm. The dot product of a query and a candidate ensemble vector is
    the mean of the k members' dot products, so one inner-product search (brute force or ScaNN)
    ranks by the averaged score of k independently initialised towers.

    Args:
      members: the towers (each maps the same feature dict to [batch, d], L2-normalised).
      shared_encoding: the members have the same vocabularies (and history tables), as TwoTower
        builds them: raw features are encoded (string lookups, history window) once by the first
        member's ``encode`` and the encoded dict goes to all, instead of each member repeating it.
    """

    def __init__(self, members: Sequence[tf.keras.Model], shared_encoding: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self.shared_encoding = bool(shared_encoding)

    def call(self, inputs, training=False):
        if self.shared_encoding:
            inputs = self.members[0].encode(inputs)
        outs = [m(inputs, training=training) for m in self.members]
        return tf.concat(outs, axis=-1) / float(np.sqrt(len(outs)))

    def get_config(self):
        return {"members": [{"class_name": type(m).__name__, "config": m.get_config()} for m in self.members],
                "shared_encoding": self.shared_encoding}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the members from their configs (a rebuilt QueryTower has its own history table:
        sharing an embedding with a candidate tower is wiring that TwoTower does, not config)."""
        classes = {"QueryTower": QueryTower, "CandidateTower": CandidateTower}
        return cls([classes[m["class_name"]](**m["config"]) for m in config["members"]],
                   shared_encoding=config.get("shared_encoding", False))
