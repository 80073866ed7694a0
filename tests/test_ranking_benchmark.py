"""benchmarks/ranking.py on other data than ML-100K: an ML-1M-layout folder, a CSV-family folder
(no users table), your own schema.json folder, and bad --dataset/--data-dir values.

Only the fast baselines (and at most MF's refusal) run here: seconds, no TensorFlow fit.
"""

import json
import re
from pathlib import Path

import pytest

from tfrec.commands import run
from tfrec.data import synthetic_movielens

FAST = "popularity,ease,ease_recency,item_knn"


@pytest.fixture(scope="module")
def ranking(load_benchmark):
    return load_benchmark("ranking")


def write_ml1m_layout(data, folder: Path) -> Path:
    """``data`` (a MovieLensData with users) as ML-1M's ratings.dat / movies.dat / users.dat."""
    folder.mkdir(parents=True)
    r = data.ratings
    lines = (r.user_id + "::" + r.item_id + "::" + r.rating.astype(int).astype(str) + "::" + r.timestamp.astype(str))
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
    it = data.items
    (folder / "movies.dat").write_text("".join(f"{i}::{t}::{'|'.join(g)}\n"
                                               for i, t, g in zip(it.item_id, it.title, it.genres)))
    u = data.users
    codes = {o: n % 21 for n, o in enumerate(sorted(set(u.occupation)))}  # ML-1M's 21 occupation codes
    users = zip(u.user_id, u.gender, u.age, u.occupation, u.zip)
    (folder / "users.dat").write_text("".join(f"{i}::{g}::{a}::{codes[o]}::{z}\n" for i, g, a, o, z in users))
    return folder


def _table_rows(out: str) -> dict:
    """model -> cells of the first markdown table after the '## Ranking on' heading."""
    body = out.split("## Ranking on", 1)[1].split("\n\n| target", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]  # "\|" is a '|' in a cell
        if line.startswith("| ") and cells[0] not in ("model",):
            rows[cells[0]] = cells[1:]
    return rows


def test_ml1m_layout_runs_and_names_the_dataset(ranking, tmp_path, capsys):
    write_ml1m_layout(synthetic_movielens(n_users=80, n_items=300, n_ratings=2400, seed=3), tmp_path / "ml-1m")
    code = ranking.main(["--dataset", "ml-1m", "--data-dir", str(tmp_path), "--models", FAST,
                         "--no-cold-start", "--seeds", "0"])
    out = capsys.readouterr().out
    assert code == 0
    # load_movielens reads ML-1M's files as real data (no synthetic.json marker in this folder).
    assert "## Ranking on MovieLens 1M (leave-last-out" in out and "SYNTHETIC" not in out
    assert re.search(r"\n2,400 interactions, 80 users, [\d,]+ items; data: .*ml-1m\n", out)
    rows = _table_rows(out)
    assert list(rows) == FAST.split(",")
    for name, cells in rows.items():
        assert 0.0 < float(cells[2]) <= 1.0, (name, cells)  # ndcg@10_mean: a number, not a skip
    assert float(rows["ease"][2]) > float(rows["popularity"][2])
    assert "| two_tower beats ease_recency (seed means) | not measured: two_tower not in --models | - |" in out
    # The ML-100K ratio targets are labelled as such on other data.
    assert "(ML-100K target, for reference) best sampled-100 HR@10" in out


def test_csv_family_without_users_table_skips_with_reasons(ranking, tmp_path, capsys):
    folder = tmp_path / "ml-latest-small"
    assert run(["data", "synthesize", "--layout", "ml-latest-small", "--out", str(folder), "--n-ratings", "2000",
                "--n-users", "80", "--n-items", "150"]) == 0
    capsys.readouterr()
    # A memory allowance below EASE's dense 150 x 150 matrices makes it skip, with the reason in its row.
    code = ranking.main(["--dataset", "ml-latest-small", "--data-dir", str(tmp_path), "--models",
                         "popularity,ease,covisitation,content_tfidf", "--seeds", "0", "--memory-gb", "0.0005"])
    out = capsys.readouterr().out
    assert code == 0
    assert "## Ranking on MovieLens latest-small, SYNTHETIC data (leave-last-out" in out
    rows = _table_rows(out)
    assert list(rows) == ["popularity", "ease", "covisitation", "content_tfidf"]
    assert rows["ease"][0] == ("skipped: needs ~1.4 MB (EASE inverts a dense 150 x 150 item matrix); 0.5 MB allowed "
                               "(--memory-gb)")
    assert all(c == "" for c in rows["ease"][1:]) and len(rows["ease"]) == len(rows["popularity"])
    # Cold-start columns exist; without a users table every new user gets popularity's ranking.
    new_users = [float(rows[m][-1]) for m in ("popularity", "covisitation", "content_tfidf")]
    assert len(set(new_users)) == 1
    assert "no users table, so every model -- two_tower included -- serves new users by popularity" in out
    assert "not measured: two_tower not in --models; ease_recency not in --models" in out


def test_own_data_folder_and_a_model_that_refuses_it(ranking, tmp_path, capsys):
    from tfrec.data.examples import write_shop_dataset

    write_shop_dataset(tmp_path / "shop")  # schema.json and implicit feedback: no rating column
    code = ranking.main(["--dataset", str(tmp_path / "shop"), "--models", "popularity,mf,item_knn",
                         "--no-cold-start", "--seeds", "0"])
    out = capsys.readouterr().out
    assert code == 0
    rows = _table_rows(out)
    assert list(rows) == ["popularity", "mf", "item_knn"]
    assert rows["mf"][0].startswith("skipped: train: no 'rating' column")
    assert float(rows["item_knn"][2]) > 0.0


def test_bad_dataset_or_data_dir_is_a_clear_error(ranking, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TFREC_DATA_DIR", raising=False)
    monkeypatch.setenv("TFREC_MOVIELENS_URL", "http://127.0.0.1:9")  # nobody listens: the download fails at once
    assert ranking.main(["--dataset", "ml-1m", "--data-dir", str(tmp_path / "nowhere"), "--models", "popularity"]) == 3
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere" / "ml-1m") in err and "ratings.dat, movies.dat, users.dat" in err
    assert ranking.main(["--dataset", "ml-2m", "--data-dir", str(tmp_path)]) == 3
    assert "unknown MovieLens dataset 'ml-2m'; expected one of: ml-100k, ml-1m" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert ranking.main(["--dataset", str(tmp_path / "folder")]) == 3
    assert "no schema.json there" in capsys.readouterr().err
    from tfrec.data.examples import write_shop_dataset

    shop = write_shop_dataset(tmp_path / "untimed")
    schema = json.loads((shop / "schema.json").read_text())
    schema["interactions"]["timestamp"] = None
    (shop / "schema.json").write_text(json.dumps(schema))
    assert ranking.main(["--dataset", str(shop), "--models", "popularity"]) == 3
    err = capsys.readouterr().err
    assert f"{shop}: the benchmark's leave-last-out split: " in err and "no 'timestamp' column" in err
    with pytest.raises(SystemExit):
        ranking.main(["--models", "popularity,nope"])
    assert "unknown nope" in capsys.readouterr().err


def test_generalization_check(ranking):
    check = ranking.generalization_check
    assert check({"two_tower": 0.12, "ease_recency": 0.08}, {}) == (
        "two_tower beats ease_recency (seed means)", "1.50x (0.1200 vs 0.0800)", "PASS")
    assert check({"two_tower": 0.047, "ease_recency": 0.068}, {})[1:] == ("0.69x (0.0470 vs 0.0680)", "FAIL")
    assert check({"two_tower": 0.1}, {"ease_recency": "skipped (memory)"})[1:] == (
        "not measured: ease_recency skipped (memory)", "-")


def test_memory_need_estimates(ranking):
    import pandas as pd

    train = pd.DataFrame({"user_id": ["1", "1", "2", "3"], "item_id": ["a", "b", "b", "c"]})
    assert ranking.memory_need("ease_recency", train)[0] == 64.0 * 3 * 3
    # item-item nonzeros: min(n_items^2 = 9, sum of squared user counts = 4 + 1 + 1)
    assert ranking.memory_need("item_knn_all_history", train)[0] == 48.0 * 6
    # user-user: min(n_users^2 = 9, sum of squared item counts = 1 + 4 + 1)
    assert ranking.memory_need("user_knn", train)[0] == 48.0 * 6
    train = pd.DataFrame({"user_id": ["1", "1", "1", "2"], "item_id": ["a", "b", "c", "a"]})
    assert ranking.memory_need("item_knn", train)[0] == 48.0 * 9  # capped at n_items^2 (9 < 9 + 1)
    assert ranking.memory_need("popularity", train) is None
