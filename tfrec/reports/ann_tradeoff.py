"""ScaNN recall vs latency on a fitted retrieval model's own item embeddings (a run-folder plot)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tfrec.reports.embedding_map import plot_recall_latency
from tfrec.utils.topk import brute_force_top_k


def plot_ann_tradeoff(model, path: Path) -> None:
    """Recall@10 vs latency of ScaNN settings on this model's own embeddings (a leaves-searched sweep)."""
    import tensorflow as tf
    from scann import scann_ops

    _, cand = model.candidate_embeddings()
    cand = np.asarray(cand, dtype=np.float32)
    users = list(model.user_index_)[:500]
    queries = np.asarray(model.user_embeddings(users), dtype=np.float32)
    exact = brute_force_top_k(queries, cand, 10)
    leaves = int(max(2, round(np.sqrt(len(cand)))))
    trials = []
    for search in sorted({max(1, leaves // 20), max(1, leaves // 10), max(1, leaves // 4), max(1, leaves // 2), leaves}):
        # The searcher a stock tfrs ScaNN layer builds with these settings, queried directly (a
        # layer per setting would trace a tf.function per setting: TensorFlow's retracing warning).
        searcher = (scann_ops.builder(db=cand, num_neighbors=10, distance_measure="dot_product")
                    .tree(num_leaves=leaves, num_leaves_to_search=search, training_iterations=12)
                    .score_ah(dimensions_per_block=2).reorder(100).build())
        searcher.search_batched_parallel(tf.constant(queries[:8]))
        t0 = time.perf_counter()
        ids = searcher.search_batched_parallel(tf.constant(queries)).indices
        seconds = (time.perf_counter() - t0) / len(queries)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.numpy(), exact)]))
        trials.append({"num_leaves": leaves, "num_leaves_to_search": search, "recall_at_k": recall,
                       "seconds_per_query_batch": seconds})
    plot_recall_latency(trials, path, title=f"ScaNN on this model's {len(cand)} item embeddings")
