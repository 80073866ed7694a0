"""`make demo` / `tfrec demo`: the main job end to end on MovieLens 100K.

data summary -> train the feature-rich two-tower and MF -> evaluate -> export (ScaNN and
brute-force SavedModels) -> start the local TF-Serving-compatible server on loopback -> ask it for
one user's recommendations over REST -> print them with titles next to the user's top-rated
movies -> stop the server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

DEMO_USER = "1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)


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
    """`tfrec serve` in a child process, bound to 127.0.0.1."""
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
        time.sleep(0.5)
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


def run_demo(data_dir=None, *, quick: bool = False, port: int = 0, base_dir="export", runs_dir="runs") -> int:
    import json
    import urllib.request

    import tfrec
    from tfrec.reports.dataset_summary import format_summary
    from tfrec.data import load_movielens
    from tfrec.training.compare import evaluate
    from tfrec.export import export_model

    t_start = time.perf_counter()
    _section("Data: MovieLens 100K")
    data = load_movielens("ml-100k", data_dir=data_dir)
    print(format_summary(data.describe()))

    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = Path(runs_dir)
    tt_hp = {"epochs": 2} if quick else {}
    mf_hp = {"epochs": 2} if quick else {}

    _section("Train: feature-rich two-tower (TFRS), leave-last-out split")
    tt = tfrec.train("two_tower", data, split="leave_last_out", output=runs / f"demo-two_tower-{stamp}",
                     verbose=0 if quick else 2, **tt_hp)
    _section("Train: matrix factorization with biases, random 80/20 split")
    mf = tfrec.train("mf", data, split="random", output=runs / f"demo-mf-{stamp}", verbose=0 if quick else 2, **mf_hp)

    _section("Evaluate")
    table = evaluate([tt, mf])
    cols = [c for c in ("full/hr@10", "full/ndcg@10", "sampled_100/hr@10", "rmse", "mae", "fit_seconds")
            if c in table.columns]
    print(table[cols].to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    print("\nMF biases -- items the model rates highest regardless of who watches them:")
    if hasattr(mf.model, "top_items_by_bias"):
        best = mf.model.top_items_by_bias(n=5)
        titles = data.items.set_index("item_id")["title"]
        for item_id in best["item_id"]:
            print(f"  {titles.get(item_id, item_id)}")

    _section("Export SavedModels")
    info_tt = export_model(tt.run_dir, name="two_tower", base_dir=base_dir)
    info_mf = export_model(mf.run_dir, name="mf", base_dir=base_dir)
    for path in list(info_tt.get("paths", [])) + list(info_mf.get("paths", [])):
        print(f"  {path}")

    _section("Serve over TF Serving's REST API (local server on 127.0.0.1)")
    from tfrec.serving import Client

    base = Path(base_dir)
    models = {"two_tower": base / "two_tower", "two_tower_bruteforce": base / "two_tower_bruteforce", "mf": base / "mf"}
    tmp = Path(tempfile.mkdtemp(prefix="tfrec-demo-"))
    config_file = tmp / "models.config"
    config_file.write_text(models_config_text(models))
    port = port or _free_port()
    proc = start_server(config_file, port, tmp / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        client = Client(url, model="two_tower")
        wait_until_available(client, list(models), proc)
        body = json.dumps({"instances": [{"user_id": DEMO_USER}]}).encode()
        print(f"  POST {url}/v1/models/two_tower:predict  {body.decode()}")
        req = urllib.request.Request(f"{url}/v1/models/two_tower:predict", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            prediction = json.loads(resp.read())["predictions"][0]
        body = json.dumps({"instances": [{"user_id": DEMO_USER, "item_id": i} for i in prediction["item_ids"][:3]]})
        req = urllib.request.Request(f"{url}/v1/models/mf:predict", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            mf_ratings = json.loads(resp.read())["predictions"]
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

    titles = data.items.set_index("item_id")["title"]
    mine = data.ratings[data.ratings["user_id"] == DEMO_USER].sort_values(["rating", "timestamp"],
                                                                          ascending=[False, False])
    _section(f"User {DEMO_USER}: top-rated movies  |  recommended over REST by two_tower")
    left = [f"{r.rating:.0f}  {titles.get(r.item_id, r.item_id)}" for r in mine.head(10).itertuples()]
    right = [f"{s:6.3f}  {titles.get(i, i)}" for i, s in zip(prediction["item_ids"], prediction["scores"])]
    width = max(len(x) for x in left) + 4
    for a, b in zip(left, right):
        print(f"  {a:<{width}}{b}")
    print("\n  MF's predicted ratings for the top three:", ", ".join(
        f"{titles.get(i, i)} -> {float(r):.2f}" for i, r in zip(prediction["item_ids"][:3], mf_ratings)))
    print(f"\nDone in {time.perf_counter() - t_start:.0f}s. Exports are in {base}/; "
          f"serve them with: tfrec serve --model_config_file serving_configs/models.config --rest_api_port 8501")
    return 0
