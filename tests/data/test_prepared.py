"""`tfrec data synthesize` / `tfrec data prepare`: sizes, the in-memory split and vocabularies
reproduced from a streamed read, blocked shards read back row for row, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfrec.data import fit_vocabularies, leave_last_out_split, load_movielens, random_split
from tfrec.data.prepare import prepare_dataset
from tfrec.data.prepared import PreparedDataset
from tfrec.data.ratings_stream import RatingsSource, iter_rating_chunks
from tfrec.data.synthesize import write_synthetic_dataset
from tfrec.errors import DataError


@pytest.fixture(scope="module")
def syn_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    summary = write_synthetic_dataset(root / "ml-32m", n_ratings=3000, n_users=120, n_items=90, seed=3,
                                      chunk_users=50)
    # Coarser timestamps: same-second ratings exercise the history's tie rule.
    path = root / "ml-32m" / "ratings.csv"
    r = pd.read_csv(path)
    r["timestamp"] = r["timestamp"] // 200_000 * 200_000
    r.to_csv(path, index=False)
    return root, summary


def test_synthesize_writes_the_requested_sizes_in_the_ml32m_layout(syn_dir):
    root, summary = syn_dir
    r = pd.read_csv(root / "ml-32m" / "ratings.csv")
    movies = pd.read_csv(root / "ml-32m" / "movies.csv")
    assert list(r.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert list(movies.columns) == ["movieId", "title", "genres"]
    assert len(r) == summary["n_ratings"] == 3000
    assert r["userId"].nunique() == 120 and len(movies) == 90
    assert not r.duplicated(["userId", "movieId"]).any()
    assert set(np.unique(r["rating"])) <= set(np.arange(1, 11) / 2)  # half stars, as in ml-32m
    assert json.loads((root / "ml-32m" / "synthetic.json").read_text())["synthetic"] is True
    # Learnable structure: popularity is skewed (Zipf), not uniform.
    counts = r["movieId"].value_counts().to_numpy()
    assert counts[:9].sum() > 3 * counts[-9:].sum()


@pytest.mark.parametrize("split", ["leave_last_out", "random"])
def test_prepare_reproduces_the_in_memory_split_and_vocabularies(syn_dir, tmp_path, split):
    root, _ = syn_dir
    meta = prepare_dataset("ml-32m", tmp_path / "prep", data_dir=root, split=split, seed=1, history_length=4,
                           chunk_rows=500, num_shards=3)
    prep = PreparedDataset(tmp_path / "prep")
    data = load_movielens("ml-32m", data_dir=root)
    train, test = (leave_last_out_split(data.ratings) if split == "leave_last_out"
                   else random_split(data.ratings, test_fraction=0.2, seed=1))
    key = ["user_id", "item_id", "timestamp"]
    got = prep.test().sort_values(key).reset_index(drop=True)
    want = test.sort_values(key).reset_index(drop=True)
    assert got[key].equals(want[key])
    assert np.allclose(got["rating"], want["rating"])
    vocabs, want_v = prep.vocabularies(), fit_vocabularies(train, items=data.items)
    assert {k: v.values for k, v in vocabs.items()} == {k: v.values for k, v in want_v.items()}
    assert meta["counts"]["train"] == len(train) and len(meta["shards"]) == 3
    assert sum(s["examples"] for s in meta["shards"]) == len(train)
    # Every training row comes back exactly once, with the item's side features.
    rows = [{k: v.numpy() for k, v in b.items()} for b in prep.dataset(batch_size=700, shuffle=False)]
    cols = {k: np.concatenate([b[k] for b in rows]) for k in rows[0]}
    assert sorted(cols) == ["genres", "history_items", "item_id", "rating", "timestamp", "user_id", "year"]
    assert cols["history_items"].shape == (len(train), 4) and cols["genres"].shape[1] == 10
    back = sorted(zip(cols["user_id"].astype(str), cols["item_id"].astype(str), cols["timestamp"]))
    assert back == sorted(zip(train["user_id"], train["item_id"], train["timestamp"]))
    year = dict(zip(data.items["item_id"], data.items["year"]))
    assert all(year[i] == y for i, y in zip(cols["item_id"].astype(str)[:50], cols["year"][:50]))


def test_shuffled_reading_mixes_blocks_and_keeps_every_row(syn_dir, tmp_path):
    root, _ = syn_dir
    prepare_dataset("ml-32m", tmp_path / "prep", data_dir=root, history_length=0, num_shards=2)
    prep = PreparedDataset(tmp_path / "prep")
    a = [b["item_id"].numpy() for b in prep.dataset(batch_size=256, seed=0, features=["item_id"])]
    b = [b["item_id"].numpy() for b in prep.dataset(batch_size=256, seed=1, features=["item_id"])]
    assert sorted(np.concatenate(a)) == sorted(np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(b))
    assert all(len(x) == 256 for x in a[:-1])


def _write(folder, text: str, movies: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(text)
    (folder / "movies.csv").write_text(movies)


@pytest.mark.parametrize("bad, line, words", [
    ("3,30,4.0,9649", 5, "ends inside this line"),            # cut off mid-timestamp, no final newline
    ("3,30\n", 5, "expected 4"),                              # a truncated row
    ("3,30,4.0,964982224,7\n", 5, "expected 4"),              # an extra field
    ("3,30,x,964982224\n", 5, "field rating"),                # not a number
    ("3,,4.0,964982224\n", 5, "field item_id"),               # empty id
])
def test_prepare_names_file_and_line_of_bad_input_and_leaves_nothing(tmp_path, bad, line, words):
    folder = tmp_path / "data" / "ml-32m"
    good = "userId,movieId,rating,timestamp\n1,10,4.0,964982703\n1,20,3.5,964981247\n2,10,2.0,964983815\n"
    _write(folder, good + bad, "movieId,title,genres\n10,A (1995),Drama\n20,B (1996),Comedy\n30,C (1997),Drama\n")
    with pytest.raises(DataError) as info:
        prepare_dataset("ml-32m", tmp_path / "out" / "prep", data_dir=tmp_path / "data", chunk_rows=2)
    msg = str(info.value)
    assert "ratings.csv" in msg and f"line {line}" in msg and words in msg
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_not_a_prepared_folder_says_so(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset .*tfrec data prepare"):
        PreparedDataset(tmp_path)
    (tmp_path / "prepared.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match="not a tfrec prepared dataset"):
        PreparedDataset(tmp_path)


def test_parquet_ratings_stream_by_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"u": ["1", "2", "3", "4", "5"], "i": ["a", "b", "a", "c", "b"],
                      "r": [4.0, 3.0, 5.0, 1.0, 2.5], "t": [1, 2, 3, 4, 5]})
    pq.write_table(table, tmp_path / "r.parquet", row_group_size=2)
    src = RatingsSource(tmp_path / "r.parquet", columns=("u", "i", "r", "t"), fmt="parquet")
    chunks = list(iter_rating_chunks(src, chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert list(pd.concat(chunks)["item_id"]) == ["a", "b", "a", "c", "b"]
    bad = table.set_column(2, "r", pa.array([4.0, 3.0, 50.0, 1.0, 2.5]))
    pq.write_table(bad, tmp_path / "bad.parquet", row_group_size=2)
    with pytest.raises(DataError, match=r"bad.parquet, row 3, field rating"):
        list(iter_rating_chunks(RatingsSource(tmp_path / "bad.parquet", columns=("u", "i", "r", "t"),
                                              fmt="parquet"), chunk_rows=2))
