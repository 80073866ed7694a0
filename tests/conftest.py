"""Shared fixtures. The real MovieLens 100K lives beside the repo in ../shared/data (never copied)."""

import contextlib
import io
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrec  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _run_cli_json(*argv) -> dict:
    from tfrec.commands import run

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run([str(a) for a in argv])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def _load_benchmark(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("ranking")``: the script ``benchmarks/ranking.py`` imported as a module (the
    benchmarks are scripts, not a package), for tests that call its functions or ``main``."""
    return _load_benchmark


@pytest.fixture(scope="session")
def cli_json():
    """``cli_json("train", ..., "--json")``: runs tfrec's CLI in process, asserts exit 0 and returns
    the parsed JSON it printed (arguments may be paths)."""
    return _run_cli_json


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The folder holding ml-100k/ ($TFREC_TEST_DATA_DIR or ../shared/data)."""
    path = Path(os.environ.get("TFREC_TEST_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (path / "ml-100k" / "u.data").is_file():
        message = f"MovieLens 100K not found at {path}/ml-100k (set TFREC_TEST_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def ml100k(ml100k_dir):
    from tfrec.data import load_movielens

    return load_movielens("ml-100k", data_dir=ml100k_dir)


@pytest.fixture(scope="session")
def synthetic_data():
    from tfrec.data import synthetic_movielens

    return synthetic_movielens(n_users=200, n_items=150, n_ratings=6000, seed=0)


@pytest.fixture()
def tiny_csv_dir(tmp_path) -> Path:
    """A small dataset in the ml-latest-small CSV layout (folder ``ml-latest-small``)."""
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,10,4.0,964982703\n1,20,3.5,964981247\n1,30,5.0,964982224\n"
        "2,10,2.0,964983815\n2,30,4.5,964982931\n3,20,1.0,964980868\n3,40,0.5,964981000\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "10,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '20,"American President, The (1995)",Comedy|Drama|Romance\n'
        "30,Heat (1995),Action|Crime|Thriller\n"
        "40,Some Untitled Film,(no genres listed)\n"
    )
    return tmp_path


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A small two-tower and MF trained on synthetic data and exported once for the session.

    Returns a dict with the base dir, the TrainResults and the export infos.
    """
    import tfrec
    from tfrec.data import synthetic_movielens
    from tfrec.export import export_model

    data = synthetic_movielens(n_users=300, n_items=400, n_ratings=9000, seed=2)
    base = tmp_path_factory.mktemp("export")
    runs = tmp_path_factory.mktemp("runs")
    tt = tfrec.train("two_tower", data, split="leave_last_out", epochs=2, verbose=0, output=runs / "two_tower",
                     embedding_dim=16, layer_sizes=[32, 16])
    mf = tfrec.train("mf", data, split="random", epochs=2, verbose=0, output=runs / "mf")
    tt_info = export_model(runs / "two_tower", name="two_tower", base_dir=base)
    mf_info = export_model(runs / "mf", name="mf", base_dir=base)
    return {"base": base, "data": data, "two_tower": tt, "mf": mf, "tt_info": tt_info, "mf_info": mf_info}
