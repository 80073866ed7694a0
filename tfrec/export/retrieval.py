"""The retrieval export: :class:`RetrievalModule` (tables, embeddings, index as TF state) and its signatures."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.export.ann_index import scann_index

DEFAULT_K = 10  # results of serving_default


def _state(value) -> tf.Variable:
    """A served array as a non-trainable variable, not a graph constant.

    Variables are written to the SavedModel's ``variables/`` checkpoint; constants are written into
    its GraphDef, which protobuf caps at 2 GB (at ML-32M size the user embeddings and seen items
    already made a 404 MB ``saved_model.pb``) and which Grappler constant-folds over on a
    session's first run (23 s for that export's first request under TF Serving-style loading).
    """
    return tf.Variable(value, trainable=False)


class RetrievalModule(tf.Module):
    """Everything a retrieval request needs, as TensorFlow state: tables, embeddings, index."""

    def __init__(self, model, *, k: int, k_max: int, use_scann: bool, scann_params: Optional[dict] = None):
        super().__init__(name="tfrec_retrieval")
        item_ids, cand = model.candidate_embeddings()
        cand = np.asarray(cand, dtype=np.float32)
        self.n_items, self.dim = cand.shape
        self.k = int(min(k, self.n_items))
        self.k_max = int(min(k_max, self.n_items))
        users = list(model.user_index_)
        user_emb = np.asarray(model.user_embeddings(users), dtype=np.float32)
        # Row 0 is "unknown user".
        self.user_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(users), tf.range(1, len(users) + 1, dtype=tf.int64)), 0)
        self.item_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(item_ids.astype(str)),
                                                tf.range(len(item_ids), dtype=tf.int64)), -1)
        self.item_ids = _state(item_ids.astype(str))
        self.candidates = _state(cand)
        self.user_embeddings = _state(np.vstack([np.zeros((1, self.dim), np.float32), user_emb]))
        norm = cand / np.maximum(np.linalg.norm(cand, axis=1, keepdims=True), 1e-12)
        self.normalized_candidates = _state(norm.astype(np.float32))
        self.use_scann = bool(use_scann)
        max_seen = max((len(v) for v in model.seen_.values()), default=0)
        # Each user's seen item positions, sorted, as one ragged row (row-split offsets by user row;
        # row 0, the unknown user, empty), int32. Brute force masks them in place; the ScaNN path
        # looks its retrieved positions up in them with a binary search. Two flat arrays load in
        # seconds, where a hash set of (user, item) keys took ~38 s to build on the first request at
        # ML-32M scale (32M pairs).
        seen = [np.sort(np.asarray(model.seen_.get(u, ()), dtype=np.int32)) for u in users]
        self.seen_splits = _state(np.concatenate([[0, 0], np.cumsum([len(s) for s in seen])]).astype(np.int64))
        self.seen_positions = _state(np.concatenate(seen) if seen else np.zeros(0, np.int32))
        del seen
        # Candidates retrieved before exclusions: enough that k_max remain after removing the
        # user's seen items and up to k_max request-time exclusions.
        self.k_retrieve = int(min(self.n_items, self.k_max + max_seen + self.k_max))
        # serving_default needs only k after the user's seen items are removed.
        self.k_default = int(min(self.n_items, self.k + max_seen))
        pop = np.asarray(model.popularity_, dtype=np.float64)
        order = np.lexsort((np.arange(len(pop)), -pop))[: self.k_retrieve]
        self.pop_positions = _state(order.astype(np.int64))
        self.pop_scores = _state((pop[order] / max(pop.sum(), 1.0)).astype(np.float32))
        # Every item's popularity score (the brute-force ranking of an unknown user; item counts, so
        # ties in float32 are ties in count and top_k's lower-position-first matches ``order``).
        self.all_pop_scores = _state((pop / max(pop.sum(), 1.0)).astype(np.float32))
        self.scann_params = dict(scann_params or {})
        if self.use_scann:
            self.index = scann_index(k=self.k_retrieve, **self.scann_params)
            self.index.index(tf.constant(cand), tf.range(self.n_items, dtype=tf.int64))
        self.new_user_specs = new_user_specs(model)
        self.has_features = bool(getattr(model, "use_features", False) and model._side and F.GENDER in model._side)
        if self.new_user_specs is not None:
            # Your own data: recommend_new_user takes the schema's user features, whatever they are.
            self.has_features = True
            self.query_model = model.query_model
            self.recommend_new_user = tf.function(self._new_user_from_schema,
                                                  input_signature=new_user_signature(self.new_user_specs))
        elif self.has_features:
            self.query_model = model.query_model
        else:
            # No demographics: no cold-start signature (tf.saved_model.save would trace it).
            self.recommend_new_user = None

    # -- core ----------------------------------------------------------------------------------------
    def _retrieve(self, queries, k_retrieve: int):
        """(positions int64 [B, k_retrieve], scores float32 [B, k_retrieve]) before exclusions."""
        if self.use_scann:
            scores, positions = self.index(queries, k=k_retrieve)
            # ScaNN may return fewer neighbours than asked (few points in the searched leaves):
            # pad to a fixed width with invalid positions that _finish masks out.
            pad = tf.maximum(k_retrieve - tf.shape(positions)[1], 0)
            positions = tf.pad(tf.cast(positions, tf.int64), [[0, 0], [0, pad]], constant_values=-1)
            scores = tf.pad(scores, [[0, 0], [0, pad]], constant_values=-np.inf)
            return positions[:, :k_retrieve], scores[:, :k_retrieve]
        scores = tf.matmul(queries, self.candidates, transpose_b=True)
        top = tf.math.top_k(scores, k=k_retrieve, sorted=True)
        return tf.cast(top.indices, tf.int64), top.values

    def _finish(self, positions, scores, user_rows, exclude_positions, k):
        """Mask seen items (per user row) and request-time exclusions, then the top k."""
        penalty = tf.zeros_like(scores)
        if user_rows is not None:
            penalty = tf.where(self._seen(user_rows, positions), tf.fill(tf.shape(scores), -np.inf), penalty)
        if exclude_positions is not None:
            hit = tf.reduce_any(tf.equal(positions[:, :, None], exclude_positions[:, None, :]), axis=-1)
            penalty = tf.where(hit, tf.fill(tf.shape(scores), -np.inf), penalty)
        # Also never return padding / invalid positions.
        penalty = tf.where(positions < 0, tf.fill(tf.shape(scores), -np.inf), penalty)
        top = tf.math.top_k(scores + penalty, k=k, sorted=True)
        chosen = tf.gather(positions, top.indices, batch_dims=1)
        return {"item_ids": tf.gather(self.item_ids, tf.maximum(chosen, 0)), "scores": top.values}

    def _seen_rows(self, rows):
        """The users' seen positions as a ragged [B, (n_seen)] int64 (sorted within each row)."""
        starts, limits = tf.gather(self.seen_splits, rows), tf.gather(self.seen_splits, rows + 1)
        spans = tf.ragged.range(starts, limits)
        return spans.with_flat_values(tf.cast(tf.gather(self.seen_positions, spans.flat_values), tf.int64))

    def _seen(self, rows, positions):
        """bool [B, n]: whether each of a user's retrieved ``positions`` is one of their seen items."""
        # Rows padded with n_items (larger than any position), plus one column so no row is empty.
        sorted_seen = self._seen_rows(rows).to_tensor(default_value=self.n_items)
        sorted_seen = tf.concat([sorted_seen, tf.fill([tf.shape(rows)[0], 1], tf.constant(self.n_items, tf.int64))], 1)
        at = tf.searchsorted(sorted_seen, positions, side="left")
        return tf.equal(tf.gather(sorted_seen, at, batch_dims=1), positions)

    def _exact_for_users(self, rows, k, exclude_positions):
        """Brute force: all candidates scored, the user's seen items and the request's exclusions set
        to -inf in place, then the top k (a top_k of k_retrieve first, as ScaNN's path needs, is a
        near-full sort of the catalog: most of a request's time)."""
        scores = tf.matmul(tf.gather(self.user_embeddings, rows), self.candidates, transpose_b=True)
        scores = tf.where((rows > 0)[:, None], scores, self.all_pop_scores[None, :])
        seen = self._seen_rows(rows)
        masked = tf.stack([seen.value_rowids(), seen.flat_values], axis=1)
        if exclude_positions is not None:
            # One row of exclusions applies to every user (broadcast, as the ScaNN path compares them);
            # unknown ids (-1) exclude nothing.
            exclude_positions = tf.broadcast_to(exclude_positions,
                                                tf.stack([tf.shape(rows)[0], tf.shape(exclude_positions)[1]]))
            hit = tf.where(exclude_positions >= 0)
            masked = tf.concat([masked, tf.stack([hit[:, 0], tf.gather_nd(exclude_positions, hit)], axis=1)], 0)
        scores = tf.tensor_scatter_nd_update(scores, masked, tf.fill(tf.shape(masked)[:1], -np.inf))
        top = tf.math.top_k(scores, k=k, sorted=True)
        return {"item_ids": tf.gather(self.item_ids, top.indices), "scores": top.values}

    def _for_users(self, user_id, k, exclude_positions, k_retrieve: int):
        rows = self.user_table.lookup(user_id)
        if not self.use_scann:
            return self._exact_for_users(rows, k, exclude_positions)
        positions, scores = self._retrieve(tf.gather(self.user_embeddings, rows), k_retrieve)
        batch = tf.shape(user_id)[0]
        known = (rows > 0)[:, None]
        pop_pos = tf.tile(self.pop_positions[None, :k_retrieve], [batch, 1])
        pop_sc = tf.tile(self.pop_scores[None, :k_retrieve], [batch, 1])
        positions = tf.where(known, positions, pop_pos)
        scores = tf.where(known, scores, pop_sc)
        return self._finish(positions, scores, rows, exclude_positions, k)

    # -- signatures ----------------------------------------------------------------------------------
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serving_default(self, user_id):
        return self._for_users(user_id, self.k, None, self.k_default)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([], tf.int32, name="k"),
                                  tf.TensorSpec([None, None], tf.string, name="exclude_item_ids")])
    def recommend(self, user_id, k, exclude_item_ids):
        tf.debugging.assert_greater_equal(k, 1, message="k must be >= 1")
        tf.debugging.assert_less_equal(k, self.k_max, message=f"k must be <= k_max ({self.k_max})")
        excl = self.item_table.lookup(exclude_item_ids)
        return self._for_users(user_id, k, excl, self.k_retrieve)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def user_embedding(self, user_id):
        return {"embedding": tf.gather(self.user_embeddings, self.user_table.lookup(user_id))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id")])
    def item_embedding(self, item_id):
        pos = self.item_table.lookup(item_id)
        emb = tf.gather(self.candidates, tf.maximum(pos, 0))
        return {"embedding": tf.where((pos >= 0)[:, None], emb, tf.zeros_like(emb))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id"),
                                  tf.TensorSpec([], tf.int32, name="k")])
    def similar_items(self, item_id, k):
        tf.debugging.assert_greater_equal(k, 1, message="k must be >= 1")
        tf.debugging.assert_less_equal(k, self.k_max, message=f"k must be <= k_max ({self.k_max})")
        pos = self.item_table.lookup(item_id)
        tf.debugging.assert_non_negative(pos, message="unknown id in input 'item_id': not in the model's vocabulary")
        sims = tf.matmul(tf.gather(self.normalized_candidates, pos), self.normalized_candidates, transpose_b=True)
        sims = sims + tf.one_hot(pos, self.n_items, on_value=-np.inf, off_value=0.0)
        top = tf.math.top_k(sims, k=k, sorted=True)
        return {"item_ids": tf.gather(self.item_ids, top.indices), "scores": top.values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="gender"),
                                  tf.TensorSpec([None], tf.int64, name="age"),
                                  tf.TensorSpec([None], tf.string, name="occupation"),
                                  tf.TensorSpec([None], tf.string, name="zip")])
    def recommend_new_user(self, gender, age, occupation, zip):  # noqa: A002 - the feature's name
        bounds = tf.constant(F.AGE_BOUNDARIES, tf.int64)
        codes = tf.constant(F.AGE_CODES, tf.int64)
        age_code = tf.gather(codes, tf.searchsorted(bounds, age, side="right"))
        feats = {F.USER_ID: tf.fill(tf.shape(gender), ""), F.GENDER: gender, F.AGE: age_code,
                 F.OCCUPATION: occupation, F.ZIP: tf.strings.substr(zip, 0, F.ZIP_PREFIX_LEN)}
        queries = self.query_model(feats, training=False)
        positions, scores = self._retrieve(queries, self.k)
        return self._finish(positions, scores, None, None, self.k)

    def _new_user_from_schema(self, *values):
        """recommend_new_user of a schema.json dataset: its user features, in spec (name) order."""
        feats = dict(zip(self.new_user_specs, values))
        feats[F.USER_ID] = tf.fill(tf.shape(values[0])[:1], "")  # out of vocabulary: the id-dropout row
        queries = self.query_model(feats, training=False)
        positions, scores = self._retrieve(queries, self.k)
        return self._finish(positions, scores, None, None, self.k)


def new_user_specs(model) -> Optional[dict]:
    """The user-feature specs of a two-tower model trained on a schema.json dataset (else None)."""
    if not getattr(model, "use_features", False) or getattr(model, "side_features", None) is None:
        return None
    specs = model._side_specs("user")
    return dict(specs) if specs else None


def new_user_signature(specs: dict) -> list:
    """One TensorSpec per schema user feature, named as in the schema: categorical / text ->
    tf.string [None]; numeric -> tf.float32 [None] (NaN = missing); multi_categorical ->
    tf.string [None, length] (padded with "")."""
    out = []
    for name, spec in specs.items():
        if spec["type"] == "numeric":
            out.append(tf.TensorSpec([None], tf.float32, name=name))
        elif spec["type"] == "multi_categorical":
            out.append(tf.TensorSpec([None, spec["length"]], tf.string, name=name))
        else:
            out.append(tf.TensorSpec([None], tf.string, name=name))
    return out




def retrieval_signatures(module: RetrievalModule) -> dict:
    sigs = {
        "serving_default": module.serving_default,
        "recommend": module.recommend,
        "user_embedding": module.user_embedding,
        "item_embedding": module.item_embedding,
        "similar_items": module.similar_items,
    }
    if module.has_features:
        sigs["recommend_new_user"] = module.recommend_new_user
    return sigs


def describe_signature(fn) -> dict:
    concrete = fn.get_concrete_function()
    inputs = [s.name for s in concrete.structured_input_signature[0]] if concrete.structured_input_signature else []
    outputs = sorted(concrete.structured_outputs)
    return {"inputs": inputs, "outputs": outputs}


def retrieval_warmup(users, items, has_features, new_user_specs: Optional[dict] = None) -> dict:
    warm = {
        "serving_default": {"user_id": users[:2]},
        "recommend": {"user_id": users[:1], "k": 10, "exclude_item_ids": [[items[0]]]},
        "similar_items": {"item_id": items[:1], "k": 10},
    }
    if new_user_specs:
        warm["recommend_new_user"] = {name: _warm_value(spec) for name, spec in new_user_specs.items()}
    elif has_features:
        warm["recommend_new_user"] = {"gender": ["F"], "age": [25], "occupation": ["student"], "zip": ["94305"]}
    return warm


def _warm_value(spec: dict) -> np.ndarray:
    """A one-user value of a schema feature, typed as its signature input."""
    if spec["type"] == "numeric":
        return np.asarray([spec.get("mean", 0.0)], dtype=np.float32)
    if spec["type"] == "multi_categorical":
        return np.asarray([[""] * spec["length"]], dtype=object)
    return np.asarray([""], dtype=object)
