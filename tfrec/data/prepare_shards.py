"""Writing a PREPARED folder's training shards and recommender state (for :mod:`tfrec.data.prepare`).

The training log arrives as integer codes (users, items, ratings, timestamps) and per-code side
feature arrays; :func:`write_shards` encodes it a chunk at a time into ``tf.train.Example`` blocks
(:func:`encode_examples`) spread over the shards, each example with its training history
(:func:`history_windows`); :func:`state_arrays` is what a fitted recommender keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfrec.data import features as F
from tfrec.data.prepared import HISTORY_ITEMS

def history_windows(keys: np.ndarray, items: np.ndarray, starts_of: np.ndarray, positions: np.ndarray,
                    length: int) -> np.ndarray:
    """[len(positions), length] training histories (item indices, 0 = padding), right-aligned.

    ``keys`` (int64, ``user << 32 | timestamp``) and ``items`` are the training log sorted by
    key; ``starts_of[p]`` is the first position of the user of position ``p``. For the example at
    each position: the user's last ``length`` items rated at or before its second, the example
    itself left out -- what ``TwoTower``'s ``QueryTower._history_items`` computes in-graph (it
    drops the target's slot from the ``length + 1`` latest, or the oldest slot when the target is
    not among them; here the example's own position is that slot).
    """
    end = np.searchsorted(keys, keys[positions], side="right")
    base = end - (length + 1)
    drop = np.where(positions >= base, positions - base, 0)
    k = np.arange(length)[None, :]
    pos = base[:, None] + k + (k >= drop[:, None])
    valid = pos >= starts_of[positions][:, None]
    return np.where(valid, items[np.maximum(pos, 0)], 0)



_LIST = {"string": ("tensorflow.BytesList", "bytes_list"), "float32": ("tensorflow.FloatList", "float_list"),
         "int64": ("tensorflow.Int64List", "int64_list")}


def encode_examples(columns: dict, sizes) -> np.ndarray:
    """Serialized ``tf.train.Example`` protos, one per block of rows.

    Args:
      columns: ``{name: (values [n_blocks, max_rows * width], width)}``: each block's rows
        concatenated (``width`` values per row: 1 for scalars, ``MAX_GENRES`` for genres, ...).
      sizes: int [n_blocks], rows in each block (values past ``sizes * width`` are ignored).

    Encoded by TensorFlow's proto encoder (``tf.io.encode_proto``) a chunk of blocks at a time.
    Its cost is per message (~4.5 us per feature and message on this project's 2-core machine), so
    one Example per rating would cost ~30 us a rating (16 minutes for 32M); a block of 64 rows
    makes it ~0.1 us a rating and leaves the cost per value.
    """
    import tensorflow as tf

    sizes = tf.constant(np.asarray(sizes, dtype=np.int32))
    n = tf.shape(sizes)[0]
    entries = []
    for name, (values, width) in columns.items():
        values = tf.convert_to_tensor(values)
        kind = {tf.string: "string", tf.float32: "float32", tf.int64: "int64"}[values.dtype]
        list_type, list_field = _LIST[kind]
        lst = tf.io.encode_proto((sizes * width)[:, None], [values], ["value"], list_type)
        feat = tf.io.encode_proto(tf.ones([n, 1], tf.int32), [lst[:, None]], [list_field], "tensorflow.Feature")
        entries.append(tf.io.encode_proto(tf.ones([n, 2], tf.int32), [tf.fill([n, 1], name), feat[:, None]],
                                          ["key", "value"], "tensorflow.Features.FeatureEntry"))
    stacked = tf.stack(entries, axis=1)
    feats = tf.io.encode_proto(tf.fill([n, 1], len(entries)), [stacked], ["feature"], "tensorflow.Features")
    return tf.io.encode_proto(tf.ones([n, 1], tf.int32), [feats[:, None]], ["features"], "tensorflow.Example").numpy()


def shard_name(j: int, n: int) -> str:
    return f"train-{j:05d}-of-{n:05d}.tfrecord"



def state_arrays(uv, iv, r, starts, item_vix, item_str, history_length, n_users, n_items) -> dict:
    """Recommender state in vocabulary indices: seen CSR, counts, rating sum, serving history."""
    pairs = np.sort(uv.astype(np.int64) * (n_items + 1) + iv)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    seen_users = pairs // (n_items + 1)
    seen_indptr = np.searchsorted(seen_users, np.arange(n_users + 2))
    history = np.zeros((n_users + 1, max(history_length, 0)), dtype=np.int32)
    if history_length:
        ends = starts[1:n_users + 2]
        begin = starts[:n_users + 1]
        for j in range(history_length):  # column j from the right: the j-th most recent item
            pos = ends - 1 - j
            ok = pos >= begin
            history[ok, history_length - 1 - j] = iv[pos[ok]]
        history[0] = 0
    return {
        "seen_indptr": seen_indptr.astype(np.int64),
        "seen_items": (pairs % (n_items + 1)).astype(np.int32),
        "user_counts": np.bincount(uv, minlength=n_users + 1).astype(np.int64),
        "item_counts": np.bincount(iv, minlength=n_items + 1).astype(np.int64),
        "rating_sum": np.asarray([float(r.astype(np.float64).sum())]),
        "history": history,
    }


def write_shards(tmp: Path, n_shards: int, perm: np.ndarray, chunk_rows: int, *, spec: dict, u, i, r, ts, keys, iv,
                 starts_of, user_str, item_str, user_side, item_side, history_length, history_on, block_rows,
                 log) -> list:
    """Write the training examples (rows ``perm`` of the code arrays, in that order) into ``n_shards``
    TFRecord files under ``tmp``; returns the examples per shard.

    ``spec`` is the ``prepared.json`` feature spec: ``rating`` / ``timestamp`` are written when it
    has them. ``user_side`` / ``item_side``: ``{feature: values per user / item code}`` ([n] or
    [n, width]). ``history_on=False`` (no timestamps: no time order) writes all-padding histories,
    as the two-tower's in-memory fit leaves its history empty then.
    """
    import tensorflow as tf

    user_t = tf.constant(user_str.astype(str))
    item_t = tf.constant(item_str.astype(str))
    side_t = []  # (name, values per code, code array, width)
    for table, codes in ((user_side or {}, u), (item_side or {}, i)):
        for name, values in table.items():
            width = values.shape[1] if values.ndim == 2 else 1
            side_t.append((name, tf.constant(values.astype(str) if values.dtype == object else values), codes, width))
    writers = [tf.io.TFRecordWriter(str(tmp / shard_name(j, n_shards))) for j in range(n_shards)]
    counts = [0] * n_shards
    done = 0
    block_no = 0
    chunk_rows = max(block_rows, chunk_rows // block_rows * block_rows)
    try:
        for start in range(0, len(perm), chunk_rows):
            pos = perm[start:start + chunk_rows]
            # Rows of the chunk as [n_blocks, block_rows]; the last block may be short (its
            # size is what encode_proto writes, the padding is never read).
            n_blocks = -(-len(pos) // block_rows)
            sizes = np.full(n_blocks, block_rows, dtype=np.int32)
            sizes[-1] = len(pos) - (n_blocks - 1) * block_rows
            padded = np.concatenate([pos, np.full(n_blocks * block_rows - len(pos), pos[0])])

            def blocks(t, width=1):
                return tf.reshape(t, [n_blocks, block_rows * width])

            cols = {F.USER_ID: (blocks(tf.gather(user_t, u[padded])), 1),
                    F.ITEM_ID: (blocks(tf.gather(item_t, i[padded])), 1)}
            if F.RATING in spec:
                cols[F.RATING] = (blocks(tf.constant(r[padded])), 1)
            if F.TIMESTAMP in spec:
                cols[F.TIMESTAMP] = (blocks(tf.constant(ts[padded])), 1)
            for name, values, codes, width in side_t:
                cols[name] = (blocks(tf.gather(values, codes[padded]), width), width)
            if history_length:
                hist = (history_windows(keys, iv, starts_of, padded, history_length) if history_on
                        else np.zeros((len(padded), history_length), np.int64))
                cols[HISTORY_ITEMS] = (blocks(tf.constant(hist.astype(np.int64)), history_length), history_length)
            records = encode_examples(cols, sizes)
            for rec in records:
                j = block_no % n_shards
                writers[j].write(rec)
                block_no += 1
            for j_block, size in enumerate(sizes):
                counts[(block_no - n_blocks + j_block) % n_shards] += int(size)
            done += len(pos)
            log(f"wrote {done:,}/{len(perm):,} training examples")
    finally:
        for w in writers:
            w.close()
    return counts

