"""Sparse-matrix helpers of the baselines: seen/recent interaction matrices, cosine, top-n per row, npz packing."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize


def seen_matrix(seen: dict, users: list, n_items: int) -> sp.csr_matrix:
    lengths = [len(seen[u]) for u in users]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([np.asarray(seen[u], dtype=np.int64) for u in users]) if users else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(users), n_items))


def put_sparse(arrays: dict, name: str, m) -> None:
    m = sp.csr_matrix(m)
    arrays[f"{name}__data"] = m.data
    arrays[f"{name}__indices"] = m.indices
    arrays[f"{name}__indptr"] = m.indptr
    arrays[f"{name}__shape"] = np.asarray(m.shape, dtype=np.int64)


def get_sparse(arrays: dict, name: str) -> sp.csr_matrix:
    shape = tuple(int(s) for s in arrays[f"{name}__shape"])
    return sp.csr_matrix((arrays[f"{name}__data"], arrays[f"{name}__indices"], arrays[f"{name}__indptr"]),
                         shape=shape)


def as_dense(m) -> np.ndarray:
    return np.asarray(m.toarray() if sp.issparse(m) else m, dtype=np.float64)


def recent_matrix(train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, shape, history: Optional[int],
                   values: Optional[np.ndarray] = None) -> sp.csr_matrix:
    """Users x catalog matrix restricted to each user's ``history`` latest interactions.

    Order is by ``timestamp`` when present (ties and timestamp-less frames: row order).
    """
    vals = np.ones(len(rows)) if values is None else np.asarray(values, dtype=np.float64)
    if history is not None:
        ts = train["timestamp"].to_numpy() if "timestamp" in train.columns else np.zeros(len(rows))
        order = np.lexsort((np.arange(len(rows)), ts, rows))  # by user, then time, then row
        r = rows[order]
        # Position from the end within each user's run of rows: keep the last `history`.
        run_end = np.r_[np.flatnonzero(r[1:] != r[:-1]), len(r) - 1]
        ends = np.repeat(run_end, np.diff(np.r_[-1, run_end]))
        keep = order[(ends - np.arange(len(r))) < history]
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    m = sp.csr_matrix((vals, (rows, cols)), shape=shape)
    m.sum_duplicates()
    if values is None:
        m.data[:] = 1.0
    return m


def cosine(matrix: sp.csr_matrix, shrinkage: float) -> sp.csr_matrix:
    """Column-column cosine ``dot(a, b) / (|a| |b| + shrinkage)``, zero diagonal, CSR.

    With ``shrinkage=0`` this equals ``sklearn.metrics.pairwise.cosine_similarity`` on the columns;
    a positive shrinkage damps pairs supported by few common rows (the classic kNN shrink term).
    """
    cols = matrix.T.tocsr().astype(np.float64)
    if shrinkage == 0:
        sim = (normalize(cols) @ normalize(cols).T).tocsr()
    else:
        sim = (cols @ cols.T).tocsr()
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=1)).ravel())
        row_of = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data = sim.data / (norms[row_of] * norms[sim.indices] + shrinkage)
    sim.setdiag(0)
    sim.eliminate_zeros()
    return sim


def top_n_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row of a CSR matrix (deterministic for equal input)."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    if n <= 0 or counts.max(initial=0) <= n:
        return m
    keep = np.ones(len(m.data), dtype=bool)
    for r in np.flatnonzero(counts > n):
        start, end = m.indptr[r], m.indptr[r + 1]
        drop = np.argpartition(-m.data[start:end], n - 1)[n:]
        keep[start + drop] = False
    row_of = np.repeat(np.arange(m.shape[0]), counts)
    out = sp.csr_matrix((m.data[keep], (row_of[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out
