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

import os
import time
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.errors import ExportError
from tfrec.export.ann_index import choose_scann_params
from tfrec.export.model_card import write_extras
from tfrec.export.rating import RatingModule
from tfrec.export.retrieval import (
    DEFAULT_K,
    RetrievalModule,
    describe_signature,
    retrieval_signatures,
    retrieval_warmup,
)
from tfrec.export.versions import next_version, version_dir
from tfrec.utils.io import atomic_directory
from tfrec.utils.versions import package_versions

def _resolve(model_or_run):
    if isinstance(model_or_run, (str, os.PathLike)):
        from tfrec.training import load_run

        return load_run(model_or_run)
    if hasattr(model_or_run, "model") and hasattr(model_or_run, "metrics"):
        return model_or_run
    return None


def save_module(module, path: Path, signatures: dict, scann: bool) -> None:
    """``tf.saved_model.save`` with the ScaNN ops whitelisted when the module holds a ScaNN index."""
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]) if scann else None
    tf.saved_model.save(module, str(path), signatures=signatures, options=options)


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
        "versions": package_versions(),
        "k": k,
    }
    if result is not None:
        cfg = getattr(result, "config", {}) or {}
        card.update({"dataset": cfg.get("dataset"), "split": cfg.get("split"), "seed": cfg.get("seed"),
                     "metrics": result.metrics, "hyperparameters": cfg.get("hyperparameters"),
                     "schema": cfg.get("schema")})
    if getattr(model, "side_features", None) is not None:
        card["side_features"] = model.side_features  # types, training statistics, list widths
    vocab = getattr(model, "vocabularies", None) or {}
    card["vocabulary_sizes"] = {key: len(v) + 1 for key, v in vocab.items()}
    card.update(metadata or {})
    retrieval = hasattr(model, "candidate_embeddings") and hasattr(model, "user_embeddings")
    if not retrieval and not hasattr(model, "call_ids"):
        raise ExportError(f"{type(model).__name__} cannot be exported as a SavedModel (baselines are not TF models)")

    if not retrieval:
        target = version_dir(base_dir, name, version, overwrite)
        module = RatingModule(model)
        card["signatures"] = {"serving_default": {"inputs": ["user_id", "item_id"], "outputs": ["rating"]}}
        sample = {"user_id": list(model.user_index_)[:2], "item_id": list(model.catalog_[:2])}
        with atomic_directory(target, overwrite=overwrite) as tmp:
            save_module(module, tmp, {"serving_default": module.serving_default}, scann=False)
            write_extras(tmp, card, {"serving_default": sample} if warmup else {}, name)
        return {"paths": [str(target)], "version": int(target.name), "model_card": card}

    # Retrieval: brute force first (its top-k is the reference for ScaNN's measured recall).
    bf_name = f"{name}_bruteforce"
    if version is None:
        version = max(next_version(Path(base_dir) / name), next_version(Path(base_dir) / bf_name))
    bf_target = version_dir(base_dir, bf_name, version, overwrite)
    sc_target = version_dir(base_dir, name, version, overwrite) if scann else None
    bf = RetrievalModule(model, k=k, k_max=k_max, use_scann=False)
    users = list(model.user_index_)
    sample_users = users[: min(len(users), 1000)]
    queries = np.asarray(model.user_embeddings(sample_users), dtype=np.float32)
    _, cand = model.candidate_embeddings()
    card["index"] = {"n_items": int(bf.n_items), "dim": int(bf.dim), "k_retrieve": bf.k_retrieve, "k_max": bf.k_max}
    signatures = retrieval_signatures(bf)
    card["signatures"] = {s: describe_signature(fn) for s, fn in signatures.items()}
    card["unknown_user_fallback"] = "the most popular training items (scores: share of training interactions)"
    card["recommend_new_user"] = bool(bf.has_features)
    paths = []
    if bf.new_user_specs is not None:
        card["recommend_new_user_inputs"] = {n: s["type"] for n, s in bf.new_user_specs.items()}
    warm = retrieval_warmup(users, list(model.catalog_), bf.has_features, bf.new_user_specs) if warmup else {}
    with atomic_directory(bf_target, overwrite=overwrite) as tmp:
        save_module(bf, tmp, signatures, scann=False)
        write_extras(tmp, {**card, "variant": "bruteforce"}, warm, bf_name)
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
        sc_sigs = retrieval_signatures(sc)
        with atomic_directory(sc_target, overwrite=overwrite) as tmp:
            save_module(sc, tmp, sc_sigs, scann=True)
            write_extras(tmp, {**card, "variant": "scann"}, warm, name)
        paths.insert(0, str(sc_target))
    return {"paths": paths, "version": int(version), "model_card": card}
