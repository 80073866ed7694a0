"""Versioned SavedModels with raw-id signatures, loadable by any TensorFlow program.

Layout: ``<base_dir>/<name>/<version>/`` (TensorFlow Serving's). A version is written to a
temporary folder beside it and renamed into place, so a server polling the base path never sees a
half-written version, and a failed export leaves earlier versions as they were.

Retrieval models (:class:`~tfrec.models.two_tower.TwoTower`) export twice from the same candidate
embeddings:

* ``<name>``: a ``tfrs.layers.factorized_top_k.ScaNN`` index (needs ``import scann`` where it is
  loaded; saved with ``namespace_whitelist=["Scann"]``);
* ``<name>_bruteforce``: exact top-k with stock TensorFlow ops only (runs on the stock
  ``tensorflow/serving`` image).

Signatures (inputs -> named outputs):

* ``serving_default``: ``user_id`` string [B] -> ``item_ids`` string [B, 10], ``scores`` float32
  [B, 10]. Items the user rated in training are excluded. Unknown user ids get the most popular
  training items (scores = share of training interactions), never an error.
* ``recommend``: ``user_id`` [B], ``k`` int32 scalar (1..k_max), ``exclude_item_ids`` string
  [B, E] ("" pads) -> ``item_ids``, ``scores`` [B, k].
* ``recommend_new_user``: ``gender``, ``occupation``, ``zip`` string [B], ``age`` int64 [B] ->
  ``item_ids``, ``scores`` [B, 10] through the query tower's feature path (feature models only).
* ``user_embedding``: ``user_id`` -> ``embedding`` [B, d]; ``item_embedding``: ``item_id`` ->
  ``embedding`` [B, d]; ``similar_items``: ``item_id`` [B], ``k`` -> ``item_ids``, ``scores``
  (exact cosine, the item itself excluded).
* rating models: ``serving_default``: ``user_id``, ``item_id`` string [B] -> ``rating`` float32 [B].
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError, ExportError
from tfrec.utils.io import atomic_directory, atomic_write_json

DEFAULT_K = 10


# ------------------------------------------------------------------------------------------------ versions
def existing_versions(model_dir) -> list[int]:
    """Integer version folders under ``model_dir`` (temporary folders are ignored)."""
    d = Path(model_dir)
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name))


def next_version(model_dir) -> int:
    versions = existing_versions(model_dir)
    return (versions[-1] + 1) if versions else 1


def _version_dir(base_dir, name: str, version: Optional[int], overwrite: bool) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ConfigError(f"export name must be letters, digits, '_', '-' or '.', got {name!r}")
    model_dir = Path(base_dir) / name
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ConfigError(f"version must be a positive integer, got {version!r}")
    target = model_dir / str(int(version))
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass overwrite=True (--overwrite) or choose another version")
    return target


# ------------------------------------------------------------------------------------------------ retrieval
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
        self.item_ids = tf.constant(item_ids.astype(str))
        self.candidates = tf.constant(cand)
        self.user_embeddings = tf.constant(np.vstack([np.zeros((1, self.dim), np.float32), user_emb]))
        norm = cand / np.maximum(np.linalg.norm(cand, axis=1, keepdims=True), 1e-12)
        self.normalized_candidates = tf.constant(norm.astype(np.float32))
        # Seen (user row, item position) pairs as int64 keys of a hash set.
        keys = []
        for row, u in enumerate(users, start=1):
            for pos in model.seen_.get(u, []):
                keys.append(row * self.n_items + int(pos))
        max_seen = max((len(v) for v in model.seen_.values()), default=0)
        keys = np.asarray(keys or [-1], dtype=np.int64)
        self.seen_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.ones(len(keys), tf.int64)), 0)
        # Candidates retrieved before exclusions: enough that k_max remain after removing the
        # user's seen items and up to k_max request-time exclusions.
        self.k_retrieve = int(min(self.n_items, self.k_max + max_seen + self.k_max))
        # serving_default needs only k after the user's seen items are removed.
        self.k_default = int(min(self.n_items, self.k + max_seen))
        pop = np.asarray(model.popularity_, dtype=np.float64)
        order = np.lexsort((np.arange(len(pop)), -pop))[: self.k_retrieve]
        self.pop_positions = tf.constant(order.astype(np.int64))
        self.pop_scores = tf.constant((pop[order] / max(pop.sum(), 1.0)).astype(np.float32))
        self.use_scann = bool(use_scann)
        self.scann_params = dict(scann_params or {})
        if self.use_scann:
            self.index = scann_index(k=self.k_retrieve, **self.scann_params)
            self.index.index(tf.constant(cand), tf.range(self.n_items, dtype=tf.int64))
        self.has_features = bool(getattr(model, "use_features", False) and model._side and F.GENDER in model._side)
        if self.has_features:
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
            keys = user_rows[:, None] * self.n_items + positions
            seen = tf.cast(self.seen_table.lookup(keys), tf.bool)
            penalty = tf.where(seen, tf.fill(tf.shape(scores), -np.inf), penalty)
        if exclude_positions is not None:
            hit = tf.reduce_any(tf.equal(positions[:, :, None], exclude_positions[:, None, :]), axis=-1)
            penalty = tf.where(hit, tf.fill(tf.shape(scores), -np.inf), penalty)
        # Also never return padding / invalid positions.
        penalty = tf.where(positions < 0, tf.fill(tf.shape(scores), -np.inf), penalty)
        top = tf.math.top_k(scores + penalty, k=k, sorted=True)
        chosen = tf.gather(positions, top.indices, batch_dims=1)
        return {"item_ids": tf.gather(self.item_ids, tf.maximum(chosen, 0)), "scores": top.values}

    def _for_users(self, user_id, k, exclude_positions, k_retrieve: int):
        rows = self.user_table.lookup(user_id)
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
        tf.debugging.assert_non_negative(pos, message="unknown item_id")
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


class RatingModule(tf.Module):
    """``serving_default``: raw ``user_id``, ``item_id`` -> ``rating`` (features looked up inside)."""

    def __init__(self, model):
        super().__init__(name="tfrec_rating")
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="item_id")])
    def serving_default(self, user_id, item_id):
        return {"rating": tf.cast(self.model.call_ids(user_id, item_id), tf.float32)}


# ------------------------------------------------------------------------------------------------ index
def is_unit_norm(cand: np.ndarray, tol: float = 1e-3) -> bool:
    """True when every row of ``cand`` has L2 norm 1 (within ``tol``), as the two-tower's do."""
    norms = np.linalg.norm(np.asarray(cand, np.float32), axis=1)
    return bool(len(norms)) and bool(np.all(np.abs(norms - 1.0) <= tol))


def scann_index(k: int, *, num_leaves: int, num_leaves_to_search: int, num_reordering_candidates: int,
                anisotropic_quantization_threshold: float = 0.2, spherical: Optional[bool] = None,
                training_iterations: int = 12, dimensions_per_block: int = 2):
    """A ``tfrs.layers.factorized_top_k.ScaNN`` layer built with ScaNN's settings for inner products.

    The stock layer scores leaves with plain asymmetric hashing and partitions with ordinary
    k-means. ScaNN's authors recommend anisotropic quantization (threshold 0.2) for maximum
    inner-product search, and a spherical tree when the database is unit-norm. On 1M clustered
    unit vectors (1,000 of 1,000 leaves searched 100, 400 re-scored) that lifts recall@10 from
    ~0.975 to ~0.987 at the same cost, or keeps ~0.98 searching half the leaves. The layer is the
    stock one (same ``Scann`` ops, serialised the same way); only how its searcher is built differs.

    Args:
      k: neighbours returned by default.
      num_leaves, num_leaves_to_search, training_iterations: the partitioning tree.
      num_reordering_candidates: candidates re-scored exactly (ScaNN returns at most this many).
      anisotropic_quantization_threshold: ScaNN's ``score_ah`` threshold (nan: isotropic, as tfrs).
      spherical: spherical k-means for the tree (None: when the indexed candidates are unit-norm).
      dimensions_per_block: asymmetric-hashing block size.
    """
    import uuid

    import tensorflow_recommenders as tfrs
    from scann import scann_ops

    layer = tfrs.layers.factorized_top_k.ScaNN(
        k=k, num_leaves=num_leaves, num_leaves_to_search=num_leaves_to_search,
        training_iterations=training_iterations, dimensions_per_block=dimensions_per_block,
        num_reordering_candidates=num_reordering_candidates)

    def build_searcher(candidates):
        builder = scann_ops.builder(db=candidates, num_neighbors=k, distance_measure="dot_product")
        sphere = is_unit_norm(np.asarray(candidates)) if spherical is None else bool(spherical)
        builder = builder.tree(num_leaves=num_leaves, num_leaves_to_search=num_leaves_to_search,
                               training_iterations=training_iterations, spherical=sphere)
        builder = builder.score_ah(dimensions_per_block,
                                   anisotropic_quantization_threshold=anisotropic_quantization_threshold)
        return builder.reorder(num_reordering_candidates).build(shared_name=f"{layer.name}/{uuid.uuid4()}")

    layer._build_searcher = build_searcher  # the stock layer's one hook for how the searcher is built
    return layer


def brute_force_top_k(queries: np.ndarray, cand: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ cand.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def choose_scann_params(queries: np.ndarray, cand: np.ndarray, *, k: int = 10, target_recall: float = 0.98,
                        k_retrieve: Optional[int] = None) -> dict:
    """ScaNN parameters chosen by measured recall@k against exact top-k on real queries.

    Tries a small grid from coarse (fast) to exhaustive and keeps the fastest setting whose
    recall@k reaches ``target_recall`` (else the most accurate). Returns the parameters and the
    measurements for the model card.
    """
    n = len(cand)
    exact = brute_force_top_k(queries, cand, k)
    spherical = is_unit_norm(cand)
    leaves = int(max(2, min(2000, round(np.sqrt(n)))))
    kr = int(min(n, k_retrieve or k))
    grid = []
    # Small catalogs gain nothing from pruning leaves (and k-means partitions of a few hundred
    # points vary run to run): search every leaf and let asymmetric hashing + reordering work.
    fractions = (1.0,) if n <= 20_000 else (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
    # ScaNN returns at most num_reordering_candidates results: keep it >= what we retrieve. A wider
    # exact re-scoring pass is the cheap way to more recall once enough leaves are searched (1M
    # clustered items, 100 of 1000 leaves: 400 candidates ~0.975, 1000 ~0.985 at +0.15 ms a query).
    reorders = sorted({int(min(n, max(kr, 100, 4 * k))), int(min(n, max(kr, 1000)))})
    for frac in fractions:
        search = max(1, int(round(leaves * frac)))
        for reorder in reorders:
            grid.append({"num_leaves": leaves, "num_leaves_to_search": search, "num_reordering_candidates": reorder,
                         "anisotropic_quantization_threshold": 0.2, "spherical": spherical})
    trials = []
    for params in grid:
        layer = scann_index(k=max(k, min(kr, n)), **params)
        layer.index(tf.constant(cand), tf.range(n, dtype=tf.int64))
        t0 = time.perf_counter()
        _, ids = layer(tf.constant(queries))
        elapsed = (time.perf_counter() - t0) / len(queries)
        ids = ids.numpy()[:, :k]
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact)]))
        trials.append({**params, "recall_at_k": recall, "seconds_per_query_batch": elapsed})
    good = [t for t in trials if t["recall_at_k"] >= target_recall]
    best = min(good, key=lambda t: t["seconds_per_query_batch"]) if good else max(trials, key=lambda t: t["recall_at_k"])
    params = {key: best[key] for key in ("num_leaves", "num_leaves_to_search", "num_reordering_candidates",
                                          "anisotropic_quantization_threshold", "spherical")}
    return {"params": params, "trials": trials, "target_recall": target_recall}


# ------------------------------------------------------------------------------------------------ export
def _resolve(model_or_run):
    if isinstance(model_or_run, (str, os.PathLike)):
        from tfrec.training import load_run

        return load_run(model_or_run)
    if hasattr(model_or_run, "model") and hasattr(model_or_run, "metrics"):
        return model_or_run
    return None


def _save(module, path: Path, signatures: dict, scann: bool) -> None:
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]) if scann else None
    tf.saved_model.save(module, str(path), signatures=signatures, options=options)


def _versions() -> dict:
    from tfrec.utils.versions import package_versions as v

    return v()


def export_model(model_or_run, *, name: str, base_dir="export", version: Optional[int] = None,
                 overwrite: bool = False, scann: bool = True, k: int = DEFAULT_K, k_max: int = 100,
                 metadata: Optional[dict] = None, warmup: bool = True) -> dict:
    """Export a fitted model (or a run folder / TrainResult) as versioned SavedModels.

    Args:
      model_or_run: a run folder written by ``tfrec train``, a ``TrainResult``, or a fitted model.
      name: the model name (folder under ``base_dir``); retrieval also writes ``<name>_bruteforce``.
      base_dir: default ``export``.
      version: integer version; default the next free one (for both variants alike).
      overwrite: replace an existing version instead of refusing.
      scann: retrieval models: also write the ScaNN variant (``<name>``).
      k: results of ``serving_default``; k_max: the largest ``k`` ``recommend`` accepts.
      metadata: extra entries for the model card.

    Returns:
      ``{"paths": [...], "version": v, "model_card": {...}}``.
    """
    result = _resolve(model_or_run)
    model = result.model if result is not None else model_or_run
    card = {
        "name": name,
        "model_class": type(model).__name__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
        "k": k,
    }
    if result is not None:
        cfg = getattr(result, "config", {}) or {}
        card.update({"dataset": cfg.get("dataset"), "split": cfg.get("split"), "seed": cfg.get("seed"),
                     "metrics": result.metrics, "hyperparameters": cfg.get("hyperparameters")})
    vocab = getattr(model, "vocabularies", None) or {}
    card["vocabulary_sizes"] = {key: len(v) + 1 for key, v in vocab.items()}
    card.update(metadata or {})
    retrieval = hasattr(model, "candidate_embeddings") and hasattr(model, "user_embeddings")
    if not retrieval and not hasattr(model, "call_ids"):
        raise ExportError(f"{type(model).__name__} cannot be exported as a SavedModel (baselines are not TF models)")

    if not retrieval:
        target = _version_dir(base_dir, name, version, overwrite)
        module = RatingModule(model)
        card["signatures"] = {"serving_default": {"inputs": ["user_id", "item_id"], "outputs": ["rating"]}}
        sample = {"user_id": list(model.user_index_)[:2], "item_id": list(model.catalog_[:2])}
        with atomic_directory(target, overwrite=overwrite) as tmp:
            _save(module, tmp, {"serving_default": module.serving_default}, scann=False)
            _write_extras(tmp, card, {"serving_default": sample} if warmup else {}, name)
        return {"paths": [str(target)], "version": int(target.name), "model_card": card}

    # Retrieval: brute force first (its top-k is the reference for ScaNN's measured recall).
    bf_name = f"{name}_bruteforce"
    if version is None:
        version = max(next_version(Path(base_dir) / name), next_version(Path(base_dir) / bf_name))
    bf_target = _version_dir(base_dir, bf_name, version, overwrite)
    sc_target = _version_dir(base_dir, name, version, overwrite) if scann else None
    bf = RetrievalModule(model, k=k, k_max=k_max, use_scann=False)
    users = list(model.user_index_)
    sample_users = users[: min(len(users), 1000)]
    queries = np.asarray(model.user_embeddings(sample_users), dtype=np.float32)
    _, cand = model.candidate_embeddings()
    card["index"] = {"n_items": int(bf.n_items), "dim": int(bf.dim), "k_retrieve": bf.k_retrieve, "k_max": bf.k_max}
    signatures = _retrieval_signatures(bf)
    card["signatures"] = {s: _describe(fn) for s, fn in signatures.items()}
    card["unknown_user_fallback"] = "the most popular training items (scores: share of training interactions)"
    card["recommend_new_user"] = bool(bf.has_features)
    paths = []
    warm = _retrieval_warmup(users, list(model.catalog_), bf.has_features) if warmup else {}
    with atomic_directory(bf_target, overwrite=overwrite) as tmp:
        _save(bf, tmp, signatures, scann=False)
        _write_extras(tmp, {**card, "variant": "bruteforce"}, warm, bf_name)
    paths.append(str(bf_target))
    if scann:
        import scann as _scann  # noqa: F401  (registers the ops)

        choice = choose_scann_params(queries, np.asarray(cand, np.float32), k=10, k_retrieve=bf.k_retrieve)
        sc = RetrievalModule(model, k=k, k_max=k_max, use_scann=True, scann_params=choice["params"])
        # Recall of the exported ScaNN signature against the brute-force twin, on real users.
        probe = tf.constant(sample_users[:500])
        a = sc.serving_default(probe)["item_ids"].numpy()
        b = bf.serving_default(probe)["item_ids"].numpy()
        recall = float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)]))
        card["index"].update({"type": "scann", "params": choice["params"], "selection": choice,
                              "recall_at_10_vs_bruteforce": recall})
        sc_sigs = _retrieval_signatures(sc)
        with atomic_directory(sc_target, overwrite=overwrite) as tmp:
            _save(sc, tmp, sc_sigs, scann=True)
            _write_extras(tmp, {**card, "variant": "scann"}, warm, name)
        paths.insert(0, str(sc_target))
    return {"paths": paths, "version": int(version), "model_card": card}


def _retrieval_signatures(module: RetrievalModule) -> dict:
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


def _describe(fn) -> dict:
    concrete = fn.get_concrete_function()
    inputs = [s.name for s in concrete.structured_input_signature[0]] if concrete.structured_input_signature else []
    outputs = sorted(concrete.structured_outputs)
    return {"inputs": inputs, "outputs": outputs}


def _retrieval_warmup(users, items, has_features) -> dict:
    warm = {
        "serving_default": {"user_id": users[:2]},
        "recommend": {"user_id": users[:1], "k": 10, "exclude_item_ids": [[items[0]]]},
        "similar_items": {"item_id": items[:1], "k": 10},
    }
    if has_features:
        warm["recommend_new_user"] = {"gender": ["F"], "age": [25], "occupation": ["student"], "zip": ["94305"]}
    return warm


def _write_extras(version_dir: Path, card: dict, warmup_inputs: dict, model_name: str) -> None:
    extra = Path(version_dir) / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    atomic_write_json(extra / "model_card.json", card)
    if warmup_inputs:
        write_warmup_requests(extra / "tf_serving_warmup_requests", model_name, warmup_inputs)


def write_warmup_requests(path: Path, model_name: str, requests: dict) -> Path:
    """TF Serving warm-up file: a TFRecord of PredictionLog(PredictRequest) per signature."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for key, value in inputs.items():
                if key == "k":
                    tensor = tf.constant(value, dtype=tf.int32)
                elif key == "age":
                    tensor = tf.constant(value, dtype=tf.int64)
                else:
                    tensor = tf.constant(value, dtype=tf.string)
                req.inputs[key].CopyFrom(tf.make_tensor_proto(tensor))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
            writer.write(log.SerializeToString())
    return path


def read_model_card(version_dir) -> dict:
    return json.loads((Path(version_dir) / "assets.extra" / "model_card.json").read_text())
