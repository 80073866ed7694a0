"""Evaluation: pure metric functions, ranking protocols, diversity re-ranking.

No TensorFlow is imported here: metrics work on any DataFrame of predictions, and the protocols
only call a fitted model's ``score_users``.

* :mod:`~tfrec.evaluation.metrics`: ``rmse``, ``mae``, ``precision_at_k``, ``recall_at_k``,
  ``ndcg_at_k``, ``map_at_k``, ``hit_rate_at_k``, ``mrr_at_k``, ``catalog_coverage``,
  ``intra_list_diversity`` (Microsoft Recommenders' conventions).
* :mod:`~tfrec.evaluation.protocols`: ``full_ranking``, ``sampled_ranking`` (NCF sampled-100),
  cold-start slices (``sparse_users``, ``new_users``, ``cold_start_slices``).
* :mod:`~tfrec.evaluation.diversity`: ``mmr_rerank``.
"""

from tfrec.evaluation.diversity import mmr_rerank
from tfrec.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mae,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    pairwise_similarity,
    precision_at_k,
    recall_at_k,
    rmse,
    top_k_items,
)
from tfrec.evaluation.protocols import (
    cold_start_report,
    cold_start_slices,
    full_ranking,
    full_ranking_predictions,
    new_users,
    sampled_ranking,
    sparse_users,
)

__all__ = [
    "catalog_coverage",
    "cold_start_report",
    "cold_start_slices",
    "full_ranking",
    "full_ranking_predictions",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mmr_rerank",
    "mrr_at_k",
    "ndcg_at_k",
    "new_users",
    "pairwise_similarity",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "sampled_ranking",
    "sparse_users",
    "top_k_items",
]
