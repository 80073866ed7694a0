"""MovieLens loaders: the real ML-100K, small fixtures in every layout, malformed files, lookup order."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data import DATASETS, find_movielens, load_movielens
from tfrec.errors import DataError, DatasetNotFoundError


# ------------------------------------------------------------------------------------------------ real ML-100K
def test_ml100k_counts_and_schema(ml100k):
    r = ml100k.ratings
    assert len(r) == 100_000
    assert r["user_id"].nunique() == 943
    assert r["item_id"].nunique() == 1682
    assert len(ml100k.items) == 1682 and len(ml100k.users) == 943
    assert r["rating"].dtype == np.float32 and r["timestamp"].dtype == np.int64
    for frame, cols in ((r, ["user_id", "item_id"]), (ml100k.items, ["item_id", "title"]),
                        (ml100k.users, ["user_id", "gender", "occupation", "zip"])):
        for col in cols:
            assert pd.api.types.is_string_dtype(frame[col]), col
            assert isinstance(frame[col].iloc[0], str)
    assert ml100k.items["year"].dtype == np.int64 and ml100k.users["age"].dtype == np.int64
    assert set(r["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert all(isinstance(g, list) for g in ml100k.items["genres"])
    assert not ml100k.synthetic and ml100k.name == "ml-100k"
    assert "ml-100k" in ml100k.source


def test_ml100k_known_values(ml100k):
    items = ml100k.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["1", "year"] == 1995
    assert items.loc["2", "genres"] == ["Action", "Adventure", "Thriller"]
    # Item 267 has no title, date or genre ("unknown" flag): year 0, no genres.
    assert items.loc["267", "year"] == 0 and items.loc["267", "genres"] == []
    users = ml100k.users.set_index("user_id")
    assert users.loc["1"].tolist() == ["M", 24, "technician", "85711"]
    assert users.loc["2"].tolist() == ["F", 53, "other", "94043"]
    first = ml100k.ratings.iloc[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == ("196", "242", 3.0, 881250949)
    # Every rated item and rating user is in the side tables.
    assert set(ml100k.ratings.item_id) <= set(ml100k.items.item_id)
    assert set(ml100k.ratings.user_id) <= set(ml100k.users.user_id)


def test_describe(ml100k):
    s = ml100k.describe()
    assert s["n_ratings"] == 100_000 and sum(s["rating_histogram"].values()) == 100_000
    assert 0.93 < s["sparsity"] < 0.94
    assert next(iter(s["top_genres"])) == "Drama"


def test_data_dir_accepts_the_dataset_folder_itself(ml100k_dir):
    data = load_movielens("ml-100k", data_dir=ml100k_dir / "ml-100k")
    assert len(data.ratings) == 100_000


def test_env_var_lookup(ml100k_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TFREC_DATA_DIR", str(ml100k_dir))
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    assert len(load_movielens("ml-100k").ratings) == 100_000


# ------------------------------------------------------------------------------------------------ tiny layouts
def _write_100k(folder, *, data=None, items=None, users=None):
    folder.mkdir(parents=True, exist_ok=True)
    flags = ["0"] * 19
    toy = flags.copy()
    toy[3] = toy[4] = toy[5] = "1"  # Animation, Children's, Comedy
    noir = flags.copy()
    noir[10] = "1"
    unknown = flags.copy()
    unknown[0] = "1"
    items = items or [
        "|".join(["1", "Toy Story (1995)", "01-Jan-1995", "", "http://x"] + toy),
        "|".join(["2", "Café Noir (1947)", "", "", ""] + noir),  # no date: year from the title
        "|".join(["3", "unknown", "", "", ""] + unknown),
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("iso-8859-1"))
    (folder / "u.user").write_text("\n".join(users or ["1|24|M|technician|85711", "2|53|F|other|T8H1N"]) + "\n")
    (folder / "u.data").write_text("\n".join(data or ["1\t1\t5\t881250949", "1\t2\t3\t881250950",
                                                      "2\t1\t4\t881250951", "2\t3\t1\t881250952"]) + "\n")
    return folder


def _write_1m(folder, *, ratings=None, users=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text(
        "\n".join(ratings or ["1::1193::5::978300760", "1::661::3::978302109", "2::1193::4::978298413"]) + "\n")
    (folder / "movies.dat").write_bytes(
        ("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
         "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
         "3::Les Misérables (1995)::Drama|Musical\n").encode("iso-8859-1"))
    (folder / "users.dat").write_text("\n".join(users or ["1::F::1::10::48067", "2::M::56::16::70072"]) + "\n")
    return folder


def test_tiny_100k_layout(tmp_path):
    _write_100k(tmp_path / "ml-100k")
    data = load_movielens("ml-100k", data_dir=tmp_path)
    items = data.items.set_index("item_id")
    assert items.loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["2", "title"] == "Café Noir (1947)"  # ISO-8859-1 decoded
    assert items.loc["2", "year"] == 1947 and items.loc["2", "genres"] == ["Film-Noir"]
    assert items.loc["3", "genres"] == [] and items.loc["3", "year"] == 0
    assert data.users.set_index("user_id").loc["2", "zip"] == "T8H1N"
    assert data.ratings["rating"].tolist() == [5.0, 3.0, 4.0, 1.0]


def test_u_genre_names_the_flag_columns(tmp_path):
    folder = _write_100k(tmp_path / "ml-100k")
    names = ["unknown"] + [f"G{i}" for i in range(1, 19)]
    (folder / "u.genre").write_text("".join(f"{n}|{i}\n" for i, n in enumerate(names)))
    items = load_movielens("ml-100k", data_dir=tmp_path).items.set_index("item_id")
    assert items.loc["1", "genres"] == ["G3", "G4", "G5"]


def test_tiny_1m_layout(tmp_path):
    _write_1m(tmp_path / "ml-1m")
    data = load_movielens("ml-1m", data_dir=tmp_path)
    assert len(data.ratings) == 3 and data.ratings.timestamp.dtype == np.int64
    items = data.items.set_index("item_id")
    assert items.loc["661", "genres"] == ["Animation", "Children's", "Musical"]
    assert items.loc["3", "title"] == "Les Misérables (1995)" and items.loc["3", "year"] == 1995
    users = data.users.set_index("user_id")
    # ML-1M codes: age 1 = "Under 18", occupation 10 = "K-12 student", 16 = "self-employed".
    assert users.loc["1"].tolist() == ["F", 1, "K-12 student", "48067"]
    assert users.loc["2", "occupation"] == "self-employed"


def test_csv_layout(tiny_csv_dir):
    data = load_movielens("ml-latest-small", data_dir=tiny_csv_dir)
    assert data.users is None
    assert len(data.ratings) == 7
    assert pd.api.types.is_string_dtype(data.ratings["item_id"])
    items = data.items.set_index("item_id")
    assert items.loc["20", "title"] == "American President, The (1995)"
    assert items.loc["20", "genres"] == ["Comedy", "Drama", "Romance"]
    assert items.loc["40", "genres"] == [] and items.loc["40", "year"] == 0
    assert data.ratings["rating"].tolist()[-1] == 0.5


@pytest.mark.parametrize("name", ["ml-latest", "ml-25m", "ml-32m"])
def test_every_csv_family_name_reads_the_same_layout(tiny_csv_dir, name):
    (tiny_csv_dir / "ml-latest-small").rename(tiny_csv_dir / name)
    data = load_movielens(name, data_dir=tiny_csv_dir)
    assert data.name == name and len(data.ratings) == 7


def test_lookup_order_data_dir_then_env(tmp_path, monkeypatch, tiny_csv_dir):
    other = tmp_path / "other"
    _write_100k(other / "ml-100k", data=["9\t1\t2\t1"])
    mine = _write_100k(tmp_path / "mine" / "ml-100k")
    monkeypatch.setenv("TFREC_DATA_DIR", str(other))
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    assert len(load_movielens("ml-100k", data_dir=mine.parent).ratings) == 4  # the argument wins
    assert len(load_movielens("ml-100k").ratings) == 1  # then $TFREC_DATA_DIR
    # A folder lacking one of the dataset's files is not a copy: the lookup moves on.
    (mine / "u.item").unlink()
    assert find_movielens("ml-100k", data_dir=mine.parent) == other / "ml-100k"


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFREC_DATA_DIR", str(tmp_path / "env-dir"))
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFREC_MOVIELENS_URL", "http://127.0.0.1:9")  # nobody listens: fails at once
    with pytest.raises(DatasetNotFoundError) as err:
        load_movielens("ml-1m", data_dir=tmp_path / "nowhere")
    msg = str(err.value)
    for place in (tmp_path / "nowhere" / "ml-1m", tmp_path / "nowhere", tmp_path / "env-dir" / "ml-1m",
                  tmp_path / "cache" / "ml-1m"):
        assert str(place) in msg
    assert "data_dir=" in msg and "TFREC_DATA_DIR" in msg and "--data-dir" in msg and "failed" in msg
    assert not (tmp_path / "cache").exists()


def test_no_download_means_no_network(tmp_path, monkeypatch):
    monkeypatch.delenv("TFREC_DATA_DIR", raising=False)
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_movielens("ml-latest-small", download=False)


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown MovieLens dataset"):
        load_movielens("ml-999k")
    assert {"ml-100k", "ml-1m", "ml-latest-small", "ml-latest", "ml-25m", "ml-32m"} == set(DATASETS)


# ------------------------------------------------------------------------------------------------ malformed
def test_malformed_rating_names_file_line_field_value(tiny_csv_dir):
    path = tiny_csv_dir / "ml-latest-small" / "ratings.csv"
    lines = path.read_text().splitlines()
    lines[3] = "1,30,five,964982224"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_movielens("ml-latest-small", data_dir=tiny_csv_dir)
    msg = str(err.value)
    assert str(path) in msg and "line 4" in msg and "field rating" in msg and "'five'" in msg


def test_malformed_100k_rating_on_line_17(tmp_path):
    data = [f"1\t{1 + i % 3}\t{1 + i % 5}\t88125{i:04d}" for i in range(20)]
    data[16] = "1\t2\tfour\t881250949"
    _write_100k(tmp_path / "ml-100k", data=data)
    with pytest.raises(DataError, match=r"u\.data, line 17, field rating: 'four' is not a number"):
        load_movielens("ml-100k", data_dir=tmp_path)


@pytest.mark.parametrize("line, pattern", [
    ("1\t2\t3\t88125.5", r"line 3, field timestamp: '88125.5' is not an integer"),
    ("1\t2\t3\t-5", r"line 3, field timestamp: '-5' is outside"),
    ("1\t2\t11\t881250949", r"line 3, field rating: '11' is outside"),
    ("\t2\t3\t881250949", r"line 3, field user_id: '' is empty"),
    ("1\t2\t3\t881250949\textra", r"line 3: expected 4 '\\t'-separated fields, got 5"),
])
def test_malformed_u_data_lines(tmp_path, line, pattern):
    _write_100k(tmp_path / "ml-100k", data=["1\t1\t5\t881250949", "", line])  # a blank line 2 is skipped
    with pytest.raises(DataError, match=pattern):
        load_movielens("ml-100k", data_dir=tmp_path)


def test_malformed_side_tables(tmp_path):
    folder = _write_100k(tmp_path / "a" / "ml-100k", users=["1|24|M|technician|85711", "2|old|F|other|94043"])
    with pytest.raises(DataError, match=r"u\.user, line 2, field age: 'old' is not an integer"):
        load_movielens("ml-100k", data_dir=folder.parent)
    bad_flag = "|".join(["9", "X (1990)", "", "", ""] + ["0"] * 18 + ["y"])
    folder = _write_100k(tmp_path / "b" / "ml-100k", items=[bad_flag])
    with pytest.raises(DataError, match=r"u\.item, line 1, field genre flag 'Western': 'y' is not 0 or 1"):
        load_movielens("ml-100k", data_dir=folder.parent)
    dup = "|".join(["1", "Again (1990)", "", "", ""] + ["0"] * 19)
    folder = _write_100k(tmp_path / "c" / "ml-100k")
    with open(folder / "u.item", "a") as fh:
        fh.write(dup + "\n")
    with pytest.raises(DataError, match=r"u\.item, line 4, field item_id: '1' appears more than once"):
        load_movielens("ml-100k", data_dir=folder.parent)


def test_malformed_1m_and_csv_headers(tmp_path, tiny_csv_dir):
    _write_1m(tmp_path / "ml-1m", ratings=["1::1193::5::978300760", "1::661::x::978302109"])
    with pytest.raises(DataError, match=r"ratings\.dat, line 2, field rating: 'x'"):
        load_movielens("ml-1m", data_dir=tmp_path)
    _write_1m(tmp_path / "ml-1m", users=["1::F::1::99::48067"])
    with pytest.raises(DataError, match=r"users\.dat, line 1, field occupation: '99' is outside"):
        load_movielens("ml-1m", data_dir=tmp_path)
    path = tiny_csv_dir / "ml-latest-small" / "ratings.csv"
    path.write_text("user,movieId,rating,timestamp\n1,10,4.0,964982703\n")
    with pytest.raises(DataError, match=r"ratings\.csv, line 1: header .* lacks column\(s\) \['userId'\]"):
        load_movielens("ml-latest-small", data_dir=tiny_csv_dir)


def test_empty_ratings_file(tiny_csv_dir):
    (tiny_csv_dir / "ml-latest-small" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match="no ratings"):
        load_movielens("ml-latest-small", data_dir=tiny_csv_dir)
