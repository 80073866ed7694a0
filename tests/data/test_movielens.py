import numpy as np
import pytest

from tfrec.data import load_movielens
from tfrec.errors import DataError, DatasetNotFoundError


def test_ml100k_counts_and_schema(ml100k):
    r = ml100k.ratings
    assert len(r) == 100_000
    assert r["user_id"].nunique() == 943
    assert r["item_id"].nunique() == 1682
    assert len(ml100k.items) == 1682 and len(ml100k.users) == 943
    assert r["rating"].dtype == np.float32 and r["timestamp"].dtype == np.int64
    assert set(r["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert isinstance(r["user_id"].iloc[0], str)
    assert not ml100k.synthetic


def test_ml100k_known_values(ml100k):
    items = ml100k.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["1", "year"] == 1995
    users = ml100k.users.set_index("user_id")
    assert users.loc["1"].tolist() == ["M", 24, "technician", "85711"]
    first = ml100k.ratings.iloc[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == ("196", "242", 3.0, 881250949)


def test_data_dir_accepts_the_dataset_folder_itself(ml100k_dir):
    data = load_movielens("ml-100k", data_dir=ml100k_dir / "ml-100k")
    assert len(data.ratings) == 100_000


def test_env_var_lookup(ml100k_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TFREC_DATA_DIR", str(ml100k_dir))
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    assert len(load_movielens("ml-100k").ratings) == 100_000


def test_csv_layout(tiny_csv_dir):
    data = load_movielens("ml-latest-small", data_dir=tiny_csv_dir)
    assert data.users is None
    assert len(data.ratings) == 7
    items = data.items.set_index("item_id")
    assert items.loc["20", "title"] == "American President, The (1995)"
    assert items.loc["20", "genres"] == ["Comedy", "Drama", "Romance"]
    assert items.loc["40", "genres"] == [] and items.loc["40", "year"] == 0
    assert data.ratings["rating"].tolist()[-1] == 0.5


def test_malformed_rating_names_file_line_field_value(tiny_csv_dir):
    path = tiny_csv_dir / "ml-latest-small" / "ratings.csv"
    lines = path.read_text().splitlines()
    lines[3] = "1,30,five,964982224"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_movielens("ml-latest-small", data_dir=tiny_csv_dir)
    msg = str(err.value)
    assert "ratings.csv" in msg and "line 4" in msg and "rating" in msg and "'five'" in msg


def test_malformed_100k_line(tmp_path, ml100k_dir):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.item", "u.user", "u.genre"):
        (folder / name).write_bytes((ml100k_dir / "ml-100k" / name).read_bytes())
    (folder / "u.data").write_text("1\t2\t3\t881250949\n1\t3\tx\t881250949\n")
    with pytest.raises(DataError, match=r"u\.data, line 2, field rating: 'x'"):
        load_movielens("ml-100k", data_dir=tmp_path)


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("TFREC_DATA_DIR", raising=False)
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    # A port nobody listens on: the download fails at once.
    monkeypatch.setenv("TFREC_MOVIELENS_URL", "http://127.0.0.1:9")
    with pytest.raises(DatasetNotFoundError) as err:
        load_movielens("ml-1m", data_dir=tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "TFREC_DATA_DIR" in msg and "failed" in msg
    assert not (tmp_path / "cache" / "ml-1m").exists()


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown MovieLens dataset"):
        load_movielens("ml-999k")


def test_describe(ml100k):
    s = ml100k.describe()
    assert s["n_ratings"] == 100_000 and sum(s["rating_histogram"].values()) == 100_000
    assert 0.93 < s["sparsity"] < 0.94
    assert next(iter(s["top_genres"])) == "Drama"
