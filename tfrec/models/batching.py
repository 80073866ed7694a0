"""Training batches for tfrec's Keras models, shuffled in cached blocks.

Tiny models such as MF spend most of their time in per-step and per-example overhead, not
arithmetic. So the rows are permuted once, cut into small blocks, the blocks are cached and
reshuffled every epoch and re-batched, which costs a few tensor ops per batch instead of several
per example (an element-wise shuffle of 80k examples takes ~0.3 s per epoch, longer than the
model's own step time).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.models.checks import check_positive_int


def cached_blocks(frame: pd.DataFrame, *, block_size: int, seed: int = 0, items=None, users=None,
                  pipeline: str = "tensor", label_key: Optional[str] = None,
                  features: Optional[Sequence[str]] = None):
    """``frame``'s rows in a seeded random order, as cached blocks of ``block_size`` examples.

    The blocks come from :func:`tfrec.data.pipelines.make_dataset` (``pipeline``, ``items``,
    ``users``, ``label_key``, ``features`` as there) and are cached in memory after the first
    pass, so later epochs (and datasets built on them) never redo the per-example work.
    """
    from tfrec.data.pipelines import make_dataset

    block_size = check_positive_int("block_size", block_size)
    order = np.random.default_rng(seed).permutation(len(frame))
    permuted = frame.iloc[order].reset_index(drop=True)
    return make_dataset(permuted, items=items, users=users, pipeline=pipeline, batch_size=block_size, shuffle=False,
                        cache=False, label_key=label_key, features=features).cache()


def epoch_batches(blocks, n_rows: int, *, batch_size: int, seed: int = 0, shuffle: bool = True,
                  drop_remainder: bool = False):
    """Batches of ``batch_size`` from ``blocks`` (of ``n_rows`` rows), in a new block order every epoch.

    Shuffling blocks rather than examples keeps the cost per batch, not per example: an
    element-wise shuffle of 80k examples takes ~0.3 s an epoch, more than MF's own training step.
    ``drop_remainder`` drops the epoch's short last batch (its rows are others each epoch).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if shuffle:
        blocks = blocks.shuffle(1 << 20, seed=seed, reshuffle_each_iteration=True)  # buffer >= n blocks
    # rebatch hides the cardinality, which Keras needs with steps_per_execution > 1.
    n_batches = max(1, n_rows // batch_size if drop_remainder else -(-n_rows // batch_size))
    ds = blocks.rebatch(batch_size, drop_remainder=drop_remainder)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))
    return ds.prefetch(tf.data.AUTOTUNE)


def default_block_size(batch_size: int) -> int:
    """Rows per shuffled block: 1/32 of a batch (at most 256), so a batch mixes >= 32 blocks."""
    return max(1, min(256, int(batch_size) // 32))


def shuffled_batches(frame: pd.DataFrame, *, batch_size: int, seed: int = 0, items=None, users=None,
                     pipeline: str = "tensor", label_key: Optional[str] = None,
                     features: Optional[Sequence[str]] = None, block_size: Optional[int] = None,
                     drop_remainder: bool = False):
    """Training batches from :func:`tfrec.data.pipelines.make_dataset`, reshuffled every epoch.

    The rows are permuted once (seeded) and cut into cached blocks (:func:`cached_blocks`; default
    :func:`default_block_size`); every epoch shuffles the blocks and re-batches them to
    ``batch_size`` (:func:`epoch_batches`), so each epoch sees a new order and new batch
    compositions at a per-block rather than per-example cost. Elements are those of
    ``make_dataset`` (a feature dict, or ``(features, label)`` with ``label_key``).
    """
    blocks = cached_blocks(frame, block_size=block_size or default_block_size(batch_size), seed=seed, items=items,
                           users=users, pipeline=pipeline, label_key=label_key, features=features)
    return epoch_batches(blocks, len(frame), batch_size=batch_size, seed=seed, drop_remainder=drop_remainder)
