"""`make demo` / `tfrec demo`: the main job end to end on MovieLens 100K.

data summary -> train the feature-rich two-tower and MF -> evaluate -> export (ScaNN and
brute-force SavedModels) -> start the local TF-Serving-compatible server on loopback -> ask it for
one user's recommendations over REST -> print them with titles next to the user's top-rated
movies -> stop the server -> the time each stage took.

Data: ``--dataset NAME`` (or ``--data-dir``) is a request: a dataset that cannot be had is an
error (exit code 3). Without either, the demo looks for MovieLens 100K as every tfrec command does
(``$TFREC_DATA_DIR``, the download cache, a download) and, when that fails (offline, no copy),
runs the same path on synthetic MovieLens-like data of ML-100K's size, saying so in a banner at the
start and at the end.

Settings: the models are trained with their defaults except for what :data:`DEMO_SETTINGS` says
(printed at the start, stated in the README); the run folders are written without their plots.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

DEMO_USER = "1"
# Demo-only settings on top of each model's defaults (README, "make demo"); the rest are defaults.
# The two-tower's fit is ~80% of the demo's CPU time with its defaults (3 tower pairs, early
# stopping at epoch 8 of 12 on ML-100K): one pair for 5 epochs costs about a third of that.
DEMO_SETTINGS: dict = {"two_tower": {"ensemble_size": 1, "epochs": 5}, "mf": {}}
# `--quick` (the test suite): two epochs each and a single tower pair.
QUICK_SETTINGS: dict = {"two_tower": {"epochs": 2, "ensemble_size": 1}, "mf": {"epochs": 2}}
# The offline stand-in: synthetic MovieLens-like data of ML-100K's size.
SYNTHETIC_ML100K = {"n_users": 943, "n_items": 1682, "n_ratings": 100_000, "seed": 0}


# ------------------------------------------------------------------------------------------------ data
def demo_data(dataset: Optional[str] = None, data_dir=None):
    """``(data, fallback)``: the dataset to demo on and, when it is the synthetic stand-in for a
    MovieLens 100K that could not be had, the reason (else None).

    ``dataset`` or ``data_dir`` given: that dataset or an error (:class:`DatasetNotFoundError`);
    ``dataset="synthetic"`` is the synthetic data, asked for. Neither: MovieLens 100K from the usual
    places, else the synthetic data with the reason.
    """
    from tfrec.data import load_movielens, synthetic_movielens
    from tfrec.errors import DatasetNotFoundError

    if dataset == "synthetic":
        return synthetic_movielens(**SYNTHETIC_ML100K), None
    if dataset is not None or data_dir is not None:
        return load_movielens(dataset or "ml-100k", data_dir=data_dir), None
    try:
        return load_movielens("ml-100k"), None
    except DatasetNotFoundError as exc:
        return synthetic_movielens(**SYNTHETIC_ML100K), str(exc)


def synthetic_banner(data, fallback: Optional[str]) -> Optional[str]:
    """The banner the demo prints at its start and end when its data is synthetic (else None)."""
    import textwrap

    if not data.synthetic:
        return None
    n = SYNTHETIC_ML100K
    text = ("SYNTHETIC DATA: MovieLens 100K could not be found or downloaded, so this demo runs on "
            if fallback else "SYNTHETIC DATA (--dataset synthetic): this demo runs on ")
    text += (f"tfrec.data.synthetic_movielens, {n['n_ratings']:,} ratings of {n['n_users']} users on "
             f"{n['n_items']:,} made-up movies. Its metrics and titles describe that generator, not MovieLens.")
    lines = textwrap.wrap(text, width=86)
    if fallback:
        lines += ["For the real data: set TFREC_DATA_DIR to a folder holding ml-100k/,",
                  "or download it once with network access: tfrec data download ml-100k"]
    return "\n".join(["#" * 90] + [f"# {line:<86} #" for line in lines] + ["#" * 90])


# ------------------------------------------------------------------------------------------------ stages
def _cpu_seconds() -> float:
    # This process and its waited-for children (the server, once stopped).
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class StageClock:
    """Prints a header per stage and records its wall and CPU seconds."""

    def __init__(self):
        self.rows: list[tuple[str, float, float]] = []

    @contextmanager
    def stage(self, name: str, title: str):
        print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            self.rows.append((name, time.perf_counter() - wall, _cpu_seconds() - cpu))

    def summary(self) -> str:
        wall = sum(r[1] for r in self.rows)
        cpu = sum(r[2] for r in self.rows)
        parts = ", ".join(f"{name} {w:.0f}" for name, w, _ in self.rows)
        return f"{wall:.0f} s wall ({parts}), {cpu:.0f} CPU-seconds"


# ------------------------------------------------------------------------------------------------ server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def models_config_text(models: dict[str, Path]) -> str:
    """A ModelServerConfig text proto serving the latest version of each model."""
    blocks = []
    for name, base in models.items():
        blocks.append(
            "  config {\n"
            f"    name: \"{name}\"\n"
            f"    base_path: \"{Path(base).resolve()}\"\n"
            "    model_platform: \"tensorflow\"\n"
            "    model_version_policy { latest { num_versions: 1 } }\n"
            "  }\n"
        )
    return "model_config_list {\n" + "".join(blocks) + "}\n"


def start_server(config_file: Path, port: int, log_path: Path) -> subprocess.Popen:
    """`tfrec serve` in a child process, bound to 127.0.0.1.

    It runs through the CLI, which quiets the libraries' logging as this process does
    (``TFREC_VERBOSE`` in the environment carries ``--verbose`` over).
    """
    cmd = [sys.executable, "-m", "tfrec.cli", "serve", "--model_config_file", str(config_file),
           "--rest_api_port", str(port)]
    log = open(log_path, "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_until_available(client, names, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    last: Optional[Exception] = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            if all(_available(client, n) for n in names):
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.25)
    raise TimeoutError(f"the server did not become ready in {timeout:.0f}s ({last})")


def _available(client, name) -> bool:
    status = client.status(model=name) if _accepts_model(client.status) else client.status()
    return any(v.get("state") == "AVAILABLE" for v in status.get("model_version_status", []))


def _accepts_model(fn) -> bool:
    import inspect

    try:
        return "model" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _post(url: str, instances: list) -> list:
    body = json.dumps({"instances": instances}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["predictions"]


def ask_server(base: Path, port: int, user: str) -> tuple[dict, list]:
    """Serve the exports, ask two_tower for ``user``'s top 10 and MF for its ratings of the top 3."""
    from tfrec.serving import Client

    models = {"two_tower": base / "two_tower", "two_tower_bruteforce": base / "two_tower_bruteforce", "mf": base / "mf"}
    tmp = Path(tempfile.mkdtemp(prefix="tfrec-demo-"))
    config_file = tmp / "models.config"
    config_file.write_text(models_config_text(models))
    port = port or _free_port()
    proc = start_server(config_file, port, tmp / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_available(Client(url, model="two_tower"), list(models), proc)
        print(f"  POST {url}/v1/models/two_tower:predict  {json.dumps({'instances': [{'user_id': user}]})}")
        prediction = _post(f"{url}/v1/models/two_tower:predict", [{"user_id": user}])[0]
        mf_ratings = _post(f"{url}/v1/models/mf:predict",
                           [{"user_id": user, "item_id": i} for i in prediction["item_ids"][:3]])
    except Exception:
        log = (tmp / "server.log").read_text(errors="replace")[-3000:]
        print(f"server log (tail):\n{log}", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
    return prediction, mf_ratings


# ------------------------------------------------------------------------------------------------ demo
def _settings_line(settings: dict) -> str:
    parts = [f"{model}: " + (", ".join(f"{k}={v}" for k, v in hp.items()) or "defaults")
             for model, hp in settings.items()]
    return "; ".join(parts) + "; run folders without plots"


def run_demo(data_dir=None, *, dataset: Optional[str] = None, quick: bool = False, port: int = 0,
             base_dir="export", runs_dir="runs") -> int:
    """The demo (see the module docstring). Returns the exit code (0)."""
    import tfrec
    from tfrec.reports.dataset_summary import format_summary

    clock = StageClock()
    settings = QUICK_SETTINGS if quick else DEMO_SETTINGS
    with clock.stage("data", "Data"):
        data, fallback = demo_data(dataset, data_dir)
        banner = synthetic_banner(data, fallback)
        if banner:
            print(banner)
        print(format_summary(data.describe()))
        print(f"\nSettings: {_settings_line(settings)}{' (--quick)' if quick else ''}")
    titles = data.items.set_index("item_id")["title"]

    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = Path(runs_dir)
    verbose = 0 if quick else 2
    with clock.stage("two_tower", "Train: feature-rich two-tower (TFRS), leave-last-out split"):
        tt = tfrec.train("two_tower", data, split="leave_last_out", output=runs / f"demo-two_tower-{stamp}",
                         plots=False, verbose=verbose, **settings["two_tower"])
    with clock.stage("mf", "Train: matrix factorization with biases, random 80/20 split"):
        mf = tfrec.train("mf", data, split="random", output=runs / f"demo-mf-{stamp}", plots=False,
                         verbose=verbose, **settings["mf"])

    with clock.stage("evaluate", "Evaluate"):
        table = tfrec.evaluate([tt, mf])
        cols = [c for c in ("full/hr@10", "full/ndcg@10", "sampled_100/hr@10", "rmse", "mae", "fit_seconds")
                if c in table.columns]
        print(table[cols].to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
        if hasattr(mf.model, "top_items_by_bias"):
            print("\nMF biases -- items the model rates highest regardless of who watches them:")
            for item_id in mf.model.top_items_by_bias(n=5)["item_id"]:
                print(f"  {titles.get(item_id, item_id)}")

    with clock.stage("export", "Export SavedModels"):
        from tfrec.export import export_model

        # From the results in memory (the run folders hold the same models, for `tfrec export`).
        info_tt = export_model(tt, name="two_tower", base_dir=base_dir)
        info_mf = export_model(mf, name="mf", base_dir=base_dir)
        for path in list(info_tt.get("paths", [])) + list(info_mf.get("paths", [])):
            print(f"  {path}")

    with clock.stage("serve", "Serve over TF Serving's REST API (local server on 127.0.0.1)"):
        prediction, mf_ratings = ask_server(Path(base_dir), port, DEMO_USER)

    mine = data.ratings[data.ratings["user_id"] == DEMO_USER].sort_values(["rating", "timestamp"],
                                                                          ascending=[False, False])
    print(f"\n=== User {DEMO_USER}: top-rated movies  |  recommended over REST by two_tower " + "=" * 8)
    left = [f"{r.rating:.0f}  {titles.get(r.item_id, r.item_id)}" for r in mine.head(10).itertuples()]
    right = [f"{s:6.3f}  {titles.get(i, i)}" for i, s in zip(prediction["item_ids"], prediction["scores"])]
    left += [""] * (len(right) - len(left))
    width = max(len(x) for x in left) + 4
    for a, b in zip(left, right):
        print(f"  {a:<{width}}{b}")
    print("\n  MF's predicted ratings for the top three:", ", ".join(
        f"{titles.get(i, i)} -> {float(r):.2f}" for i, r in zip(prediction["item_ids"][:3], mf_ratings)))
    print(f"\nDone in {clock.summary()}.\nExports are in {base_dir}/, run folders in {runs}/; serve the exports "
          "with: tfrec serve --model_config_file serving_configs/models.config --rest_api_port 8501")
    if banner:
        print(banner)
    return 0
