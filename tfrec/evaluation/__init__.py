"""Evaluation: pure metric functions, protocols, diversity, and run comparison.

No TensorFlow is imported here: metrics work on any DataFrame of predictions.
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
    precision_at_k,
    recall_at_k,
    rmse,
)
from tfrec.evaluation.protocols import cold_start_report, full_ranking, new_users, sampled_ranking, sparse_users

__all__ = [
    "catalog_coverage",
    "cold_start_report",
    "full_ranking",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mmr_rerank",
    "mrr_at_k",
    "ndcg_at_k",
    "new_users",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "sampled_ranking",
    "sparse_users",
]
