"""`tfrec data prepare`: a ratings log streamed into a PREPARED folder of TFRecord shards.

See :mod:`tfrec.data.prepared` for the folder's layout and the reading side. The ratings are read
once, in chunks (:mod:`tfrec.data.ratings_stream` for the MovieLens layouts,
:mod:`tfrec.data.prepare_schema` for a schema.json dataset), and kept only as compact integer codes
(about 20 bytes a rating: user and item codes, rating, timestamp), never as text or a DataFrame;
the split, the vocabularies, the per-example training histories and the recommender state are
computed on those arrays, and the training examples are encoded a chunk at a time
(:mod:`tfrec.data.prepare_shards`).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec.data import features as F
from tfrec.data import prepare_schema as S
from tfrec.data.prepare_shards import shard_name, state_arrays, write_shards
from tfrec.data.prepared import (DEFAULT_BLOCK_ROWS, DEFAULT_HISTORY_LENGTH, FORMAT, FORMAT_VERSION, HISTORY_ITEMS,
                                 PREPARED_FILE, SPLITS)
from tfrec.data.ratings_stream import DEFAULT_CHUNK_ROWS, SourceData, iter_rating_chunks, resolve_source
from tfrec.data.splits import NEEDS_TIME_ORDER
from tfrec.data.vocab import Vocabulary, save_vocabularies
from tfrec.errors import ConfigError, DataError
from tfrec.utils.io import atomic_directory

_RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


# ------------------------------------------------------------------------------------------------ coding
class _Codes:
    """Strings -> dense int codes in order of first appearance (a growing dictionary)."""

    def __init__(self):
        self.index: dict = {}

    def encode(self, values: np.ndarray) -> np.ndarray:
        local, uniques = pd.factorize(values)
        index = self.index
        mapped = np.fromiter((index.setdefault(v, len(index)) for v in uniques), dtype=np.int64, count=len(uniques))
        return mapped[local].astype(np.int32)

    def strings(self) -> np.ndarray:
        return np.asarray(list(self.index), dtype=object)


def _string_rank(strings: np.ndarray) -> np.ndarray:
    """rank[code] = position of strings[code] in sorted string order (ties impossible: unique)."""
    order = np.argsort(strings.astype(str), kind="stable")
    rank = np.empty(len(strings), dtype=np.int64)
    rank[order] = np.arange(len(strings))
    return rank


def _split_masks(split: str, u, i, ts, user_str, item_str, *, test_fraction: float, seed: int):
    """(is_test, is_validation or None): the same rows the in-memory splits select."""
    n = len(u)
    if split == "random":
        n_test = int(round(n * test_fraction))
        perm = np.random.default_rng(seed).permutation(n)
        is_test = np.zeros(n, dtype=bool)
        is_test[perm[:n_test]] = True
        return is_test, None
    if split == "cold_start":
        users = np.sort(user_str.astype(str))
        n_test = max(1, int(round(len(users) * test_fraction)))
        if n_test >= len(users):
            raise ConfigError(f"test_fraction={test_fraction} leaves no training users ({len(users)} users)")
        chosen = set(np.random.default_rng(seed).permutation(users)[:n_test])
        user_is_test = np.fromiter((s in chosen for s in user_str.astype(str)), dtype=bool, count=len(user_str))
        return user_is_test[u], None
    # Time order, ties broken by user id then item id (as strings): tfrec.data.splits._time_order.
    order = np.lexsort((_string_rank(item_str)[i], _string_rank(user_str)[u], ts))
    if split == "temporal":
        a, b = int(round(n * 0.75)), int(round(n * (0.75 + 0.15)))
        is_val = np.zeros(n, dtype=bool)
        is_test = np.zeros(n, dtype=bool)
        is_val[order[a:b]] = True
        is_test[order[b:]] = True
        return is_test, is_val
    if split == "leave_last_out":
        n_users = int(u.max()) + 1
        last_rank = np.full(n_users, -1, dtype=np.int64)
        np.maximum.at(last_rank, u[order], np.arange(n, dtype=np.int64))  # each user's latest row
        counts = np.bincount(u, minlength=n_users)
        last_rank = last_rank[counts > 1]
        is_test = np.zeros(n, dtype=bool)
        is_test[order[last_rank]] = True
        return is_test, None
    raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")


def _vocab_order(codes_count: np.ndarray, strings: np.ndarray) -> np.ndarray:
    """Codes with a positive count, most frequent first, ties by string (Vocabulary.fit's order)."""
    present = np.flatnonzero(codes_count > 0)
    rank = _string_rank(strings)
    return present[np.lexsort((rank[present], -codes_count[present]))]


# ------------------------------------------------------------------------------------------------ writing
def _feature_spec(has_users: bool, has_items: bool, history_length: int) -> dict:
    spec = {F.USER_ID: ("string", []), F.ITEM_ID: ("string", []), F.RATING: ("float32", []),
            F.TIMESTAMP: ("int64", [])}
    if has_users:
        spec.update({F.GENDER: ("string", []), F.AGE: ("int64", []), F.OCCUPATION: ("string", []),
                     F.ZIP: ("string", [])})
    if has_items:
        spec.update({F.GENRES: ("string", [F.MAX_GENRES]), F.YEAR: ("int64", [])})
    if history_length:
        spec[HISTORY_ITEMS] = ("int64", [history_length])
    return {k: {"dtype": d, "shape": s} for k, (d, s) in spec.items()}


def prepare_dataset(dataset, out, *, data_dir=None, split: str = "leave_last_out", test_fraction: float = 0.2,
                    seed: int = 0, history_length: int = DEFAULT_HISTORY_LENGTH, num_shards: Optional[int] = None,
                    chunk_rows: int = DEFAULT_CHUNK_ROWS, overwrite: bool = False, progress: bool = False) -> dict:
    """Stream a dataset's ratings into a PREPARED folder (see the module docstring).

    Args:
      dataset: a MovieLens name (``"ml-32m"``, ``"ml-1m"``, ...) found via ``data_dir`` as for
        :func:`tfrec.data.load_movielens` (no download), a folder holding ``schema.json`` (or the
        file; your own data, CSV or Parquet: see :mod:`tfrec.data.prepare_schema`), or a
        :class:`SourceData`.
      out: the PREPARED folder (an existing one is an error unless ``overwrite``).
      split: ``random`` (``test_fraction``, ``seed``), ``temporal`` (75/15/10; the 15% is
        ``validation.csv``), ``leave_last_out`` or ``cold_start`` (``test_fraction`` of users):
        the same rows as :func:`tfrec.training.make_split` on the loaded frame. ``temporal``
        and ``leave_last_out`` need timestamps (a schema with ``"timestamp": null`` is refused).
      history_length: H of the ``history_item_ids`` feature (0: not written).
      num_shards: training TFRecord files (default: one per ~1M training examples, at least 2).
      chunk_rows: ratings read, and examples encoded, per chunk (memory vs. speed).
      progress: print progress lines on stderr.

    Returns:
      The ``prepared.json`` dict.

    Raises:
      DataError: a malformed ratings file (file, line, field named), or, for a schema.json dataset,
        any problem :func:`tfrec.data.load_dataset` reports (missing column, wrong type, duplicate
        side-table id, empty file, unknown items under ``"unknown_items": "error"``); nothing is
        written.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    history_length = int(history_length)
    if history_length < 0:
        raise ConfigError(f"history_length must be >= 0, got {history_length}")
    if num_shards is not None and (isinstance(num_shards, bool) or int(num_shards) < 1):
        raise ConfigError(f"num_shards must be a positive integer, got {num_shards!r}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists (pass --overwrite to replace it)")
    t0 = time.perf_counter()
    log = _Log(progress)
    src = resolve_source(dataset, data_dir)
    schema = src.schema  # None: a MovieLens layout
    has_rating = schema is None or schema.has_rating
    has_time = schema is None or schema.has_timestamp
    if not has_time and split in ("temporal", "leave_last_out"):
        raise DataError(NEEDS_TIME_ORDER)

    # Pass over the ratings: integer codes only (implicit data: ratings 0; no timestamps: 0).
    users, items = _Codes(), _Codes()
    parts = {k: [] for k in _RATING_COLUMNS}
    n = 0
    chunks = S.iter_schema_chunks(src, chunk_rows) if schema is not None else iter_rating_chunks(src.ratings,
                                                                                                   chunk_rows)
    for chunk in chunks:
        parts["user_id"].append(users.encode(chunk["user_id"].to_numpy()))
        parts["item_id"].append(items.encode(chunk["item_id"].to_numpy()))
        parts["rating"].append(chunk["rating"].to_numpy(np.float32) if has_rating
                               else np.zeros(len(chunk), np.float32))
        parts["timestamp"].append(chunk["timestamp"].to_numpy(np.int64) if has_time
                                  else np.zeros(len(chunk), np.int64))
        n += len(chunk)
        log(f"read {n:,} ratings")
    u = np.concatenate(parts.pop("user_id"))
    i = np.concatenate(parts.pop("item_id"))
    r = np.concatenate(parts.pop("rating"))
    ts = np.concatenate(parts.pop("timestamp"))
    del parts
    user_str, item_str = users.strings(), items.strings()
    del users, items
    read_seconds = time.perf_counter() - t0

    is_test, is_val = _split_masks(split, u, i, ts, user_str, item_str, test_fraction=float(test_fraction), seed=seed)
    held = is_test if is_val is None else (is_test | is_val)
    if not is_test.any():
        raise DataError(f"the {split!r} split of {src.name} left no test ratings")
    if held.all():
        raise DataError(f"the {split!r} split of {src.name} left no training ratings")

    with atomic_directory(out, overwrite=overwrite) as tmp:
        counts = {"ratings": int(n), "users": int(len(user_str)), "items": int(len(item_str))}
        files = {}
        for name, mask in (("test", is_test), ("validation", is_val)):
            if mask is None:
                continue
            frame = pd.DataFrame({"user_id": user_str[u[mask]], "item_id": item_str[i[mask]]})
            if has_rating:
                frame["rating"] = r[mask]
            if has_time:
                frame["timestamp"] = ts[mask]
            frame.to_csv(tmp / f"{name}.csv", index=False)
            files[name] = f"{name}.csv"
            counts[name] = int(mask.sum())
        keep = ~held
        u, i, r, ts = u[keep], i[keep], r[keep], ts[keep]
        del keep, held, is_test, is_val
        counts["train"] = int(len(u))

        # Vocabularies (fitted on train, Vocabulary.fit's order) and code -> vocabulary index maps.
        user_count = np.bincount(u, minlength=len(user_str))
        item_count = np.bincount(i, minlength=len(item_str))
        user_order = _vocab_order(user_count, user_str)
        item_order = _vocab_order(item_count, item_str)
        # int32 codes and positions (32M ratings fit): memory is the point of this module.
        user_vix = np.zeros(len(user_str), dtype=np.int32)
        user_vix[user_order] = np.arange(1, len(user_order) + 1)
        item_vix = np.zeros(len(item_str), dtype=np.int32)
        item_vix[item_order] = np.arange(1, len(item_order) + 1)
        vocabs = {F.USER_ID: Vocabulary(user_str[user_order]), F.ITEM_ID: Vocabulary(item_str[item_order])}
        counts.update(train_users=int(len(user_order)), train_items=int(len(item_order)))
        side_specs = None
        if schema is not None:
            user_side, item_side, side_specs = S.schema_side_columns(src, user_str, item_str, user_count > 0,
                                                                     item_count > 0, vocabs)
            tables = S.write_schema_tables(src, tmp)
        else:
            user_side, item_side = _side_columns(src, user_str, item_str, user_count > 0, item_count > 0, vocabs)
            tables = _write_movielens_tables(src, tmp)
        save_vocabularies(vocabs, tmp / "vocabularies.json")

        # The training log in (user, time) order (ties: file order), as TwoTower sorts it.
        keys = (user_vix[u].astype(np.int64) << 32) | np.clip(ts, 0, (1 << 32) - 1)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        u, i, r, ts = u[order], i[order], r[order], ts[order]
        del order
        uv, iv = user_vix[u], item_vix[i]
        starts = np.searchsorted(keys, np.arange(len(user_order) + 2, dtype=np.int64) << 32)
        starts_of = starts.astype(np.int32)[uv]
        state = state_arrays(uv, iv, r, starts, item_vix, item_str, history_length, len(user_order),
                             len(item_order))
        if not has_time and history_length:
            # No time order: as TwoTower's in-memory fit, an empty history rather than one that
            # could hold the very item an example predicts.
            warnings.warn(f"{src.name} has no timestamps: the prepared history_items are empty (recent-history "
                          "pooling is off for models trained on this folder)", UserWarning, stacklevel=2)
            state["history"][:] = 0
        np.savez(tmp / "state.npz", **state)
        del uv, state

        # Shards: examples in a seeded random order, each chunk spread over all shards.
        n_train = len(u)
        n_shards = int(num_shards) if num_shards else max(2, min(256, math.ceil(n_train / 1_000_000)))
        n_shards = min(n_shards, n_train)
        spec = (S.schema_feature_spec(schema, side_specs, history_length) if schema is not None
                else _feature_spec(user_side is not None, item_side is not None, history_length))
        shard_counts = write_shards(tmp, n_shards, np.random.default_rng(seed + 1).permutation(n_train),
                                    chunk_rows, spec=spec, u=u, i=i, r=r, ts=ts, keys=keys, iv=iv,
                                    starts_of=starts_of, user_str=user_str, item_str=item_str, user_side=user_side,
                                    item_side=item_side, history_length=history_length, history_on=has_time,
                                    block_rows=DEFAULT_BLOCK_ROWS, log=log)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": src.name,
            "synthetic": bool(src.synthetic),
            "source": src.source,
            "split": split,
            "test_fraction": float(test_fraction),
            "seed": int(seed),
            "counts": counts,
            "rating_mean": float(r.astype(np.float64).mean()) if has_rating else None,
            "history_length": history_length,
            "block_rows": DEFAULT_BLOCK_ROWS,
            "features": spec,
            "shards": [{"path": shard_name(j, n_shards), "examples": int(c)} for j, c in enumerate(shard_counts)],
            "vocabularies": "vocabularies.json",
            "state": "state.npz",
            **tables,
            # Your own data: the schema, and the features' fitted specs (a model's side_features).
            "schema": schema.to_dict() if schema is not None else None,
            "side_features": side_specs,
            **({"unknown_items": int(src.extras.get("unknown_items", 0))} if schema is not None else {}),
            **files,
            "seconds": {"read": round(read_seconds, 2), "total": round(time.perf_counter() - t0, 2)},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / PREPARED_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def _side_columns(src: SourceData, user_str, item_str, user_in_train, item_in_train, vocabs):
    """Per user code / item code feature arrays, and the side vocabularies (fitted on train)."""
    user_side = item_side = None
    if src.users is not None:
        table = F.user_feature_table(src.users).reindex(user_str.astype(str))
        user_side = {
            F.GENDER: table[F.GENDER].fillna(F.PAD).astype(str).to_numpy(dtype=object),
            F.AGE: table[F.AGE].fillna(0).astype(np.int64).to_numpy(),
            F.OCCUPATION: table[F.OCCUPATION].fillna(F.PAD).astype(str).to_numpy(dtype=object),
            F.ZIP: table[F.ZIP].fillna(F.PAD).astype(str).to_numpy(dtype=object),
        }
        # As fit_vocabularies: side values of users present in train (and in the users table).
        known = F.user_feature_table(src.users)
        known = known[known.index.isin(set(user_str[user_in_train].astype(str)))]
        for col in (F.GENDER, F.OCCUPATION, F.ZIP):
            vocabs[col] = Vocabulary.fit(known[col])
    if src.items is not None:
        table = F.item_feature_table(src.items).reindex(item_str.astype(str))
        empty = [F.PAD] * F.MAX_GENRES
        genres = np.asarray([g if isinstance(g, list) else empty for g in table[F.GENRES]], dtype=object)
        item_side = {F.GENRES: genres.reshape(len(item_str), F.MAX_GENRES),
                     F.YEAR: table[F.YEAR].fillna(0).astype(np.int64).to_numpy()}
        seen = set(item_str[item_in_train].astype(str))
        vocabs[F.GENRES] = Vocabulary.fit(
            [g for iid, gs in zip(src.items["item_id"].astype(str), src.items["genres"]) if iid in seen for g in gs])
    return user_side, item_side


def _write_movielens_tables(src: SourceData, tmp: Path) -> dict:
    out = {"items": None, "users": None}
    if src.items is not None:
        frame = src.items[["item_id", "title", "year", "genres"]].copy()
        frame["genres"] = ["|".join(g) for g in frame["genres"]]
        frame.to_csv(tmp / "items.csv", index=False)
        out["items"] = "items.csv"
    if src.users is not None:
        src.users.to_csv(tmp / "users.csv", index=False)
        out["users"] = "users.csv"
    return out


class _Log:
    def __init__(self, on: bool):
        self.on, self.t0 = bool(on), time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.on:
            print(f"[tfrec] prepare: {msg} ({time.perf_counter() - self.t0:.1f} s)", file=sys.stderr, flush=True)
