"""ScaNN recall vs latency on a fitted retrieval model's own item embeddings (a run-folder plot)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tfrec.reports.embedding_map import plot_recall_latency
from tfrec.utils.topk import brute_force_top_k


def plot_ann_tradeoff(model, path: Path) -> None:
    """Recall@10 vs latency of ScaNN settings on this model's own embeddings (a leaves-searched sweep)."""
    import scann  # noqa: F401
    import tensorflow_recommenders as tfrs
    import tensorflow as tf

    _, cand = model.candidate_embeddings()
    cand = np.asarray(cand, dtype=np.float32)
    users = list(model.user_index_)[:500]
    queries = np.asarray(model.user_embeddings(users), dtype=np.float32)
    exact = brute_force_top_k(queries, cand, 10)
    leaves = int(max(2, round(np.sqrt(len(cand)))))
    trials = []
    for search in sorted({max(1, leaves // 20), max(1, leaves // 10), max(1, leaves // 4), max(1, leaves // 2), leaves}):
        layer = tfrs.layers.factorized_top_k.ScaNN(k=10, num_leaves=leaves, num_leaves_to_search=search,
                                                   num_reordering_candidates=100)
        layer.index(tf.constant(cand), tf.range(len(cand), dtype=tf.int64))
        layer(tf.constant(queries[:8]))
        t0 = time.perf_counter()
        _, ids = layer(tf.constant(queries))
        seconds = (time.perf_counter() - t0) / len(queries)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.numpy(), exact)]))
        trials.append({"num_leaves": leaves, "num_leaves_to_search": search, "recall_at_k": recall,
                       "seconds_per_query_batch": seconds})
    plot_recall_latency(trials, path, title=f"ScaNN on this model's {len(cand)} item embeddings")
