"""How tfrec's out-of-core path scales: synthesize -> prepare -> train --prepared -> evaluate (-> export, serve).

For each size (default 1M, 4M and 32M ratings; the 32M folder is ML-32M-sized: 200,948 users,
87,585 items) every step runs as its own ``tfrec`` subprocess under ``/usr/bin/time -v``, so the
wall time and peak RSS printed are the processes' own. Prints one table:

* prepare: ``tfrec data prepare --split leave_last_out`` wall time and peak RSS (target at 32M: <= 4 GiB);
* train: ``tfrec train two_tower --prepared ... --epochs 1 --steps-per-epoch N --eval-users U``:
  training examples/s (measured over the capped epoch), peak RSS of the whole command, training
  included (target at 32M: <= 6 GiB), the one-epoch time extrapolated from examples/s (marked
  ``~``; a full epoch at 32M is hours on 2 cores), evaluation seconds per 1,000 users (full
  ranking over the whole catalog, a seeded sample of U test users);
* for the largest size, also ``tfrec export`` (ScaNN + brute force) and ``tfrec serve`` answering a
  REST request twice (time to load, to the first and to the second answer, the answer's size).

Usage::

    python benchmarks/scale.py --work-dir /tmp/tfrec_scale                     # 1M, 4M, 32M
    python benchmarks/scale.py --sizes 1000000 --work-dir /tmp/tfrec_scale     # one size

Datasets are generated once into ``--work-dir`` (``syn-<n>``) and reused; use /tmp, never the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

GIB = 1024 ** 3


def timed(cmd, *, log: Path) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; wall seconds, peak RSS bytes, stdout (stderr to ``log``)."""
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE, stderr=err, text=True)
    seconds = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return {"seconds": seconds, "rss": int(m.group(1)) * 1024 if m else None, "stdout": proc.stdout}


def reused(log: Path, done: bool) -> dict | None:
    """The /usr/bin/time record of an earlier run of a step (``--reuse``), if it finished."""
    if not (done and log.is_file()):
        return None
    text = log.read_text(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if not (m and w):
        return None
    seconds = 0.0
    for part in w.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return {"seconds": seconds, "rss": int(m.group(1)) * 1024, "stdout": "", "reused": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_once(model_dir: Path, name: str, user: str, *, log: Path, timeout: float = 900.0) -> dict:
    """Start ``tfrec serve`` on a free port, wait for the model, ask once, stop it."""
    port = free_port()
    with open(log, "w") as err:
        proc = subprocess.Popen(["tfrec", "serve", "--model_name", name, "--model_base_path", str(model_dir),
                                 "--rest_api_port", str(port)], stdout=err, stderr=subprocess.STDOUT)
    t0 = time.perf_counter()
    try:
        body = json.dumps({"instances": [{"user_id": user}]}).encode()
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"tfrec serve exited ({proc.returncode}); see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{name}", timeout=5) as r:
                    status = json.loads(r.read())
                if any(v.get("state") == "AVAILABLE" for v in status.get("model_version_status", [])):
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"tfrec serve did not load {model_dir} within {timeout:.0f} s; see {log}")
            time.sleep(2)
        ready = time.perf_counter() - t0
        latencies = []
        for _ in range(2):  # the first answer pays the graph's first run; the second is the steady cost
            t1 = time.perf_counter()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{name}:predict", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=120) as r:
                answer = json.loads(r.read())
            latencies.append(time.perf_counter() - t1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    pred = answer["predictions"][0]
    return {"load_seconds": ready, "request_seconds": latencies[0], "second_request_seconds": latencies[1],
            "n_items": len(pred["item_ids"]), "top_item": pred["item_ids"][0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 32_000_000])
    ap.add_argument("--work-dir", default="/tmp/tfrec_scale", help="where datasets, prepared folders and runs go")
    ap.add_argument("--model", default="two_tower")
    ap.add_argument("--steps-per-epoch", type=int, default=200)
    ap.add_argument("--eval-users", type=int, default=1000)
    ap.add_argument("--export-largest", action=argparse.BooleanOptionalAction, default=True,
                    help="export (ScaNN) and serve the largest size's model")
    ap.add_argument("--reuse", action="store_true",
                    help="keep steps an earlier run of this script finished (their /usr/bin/time logs and outputs "
                         "in --work-dir) instead of running them again")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        data = work / f"syn-{n}"
        layout_args = [] if n == 32_000_000 else ["--n-ratings", str(n)]
        if not (data / "ratings.csv").is_file():
            print(f"[scale] synthesizing {n:,} ratings into {data}", file=sys.stderr, flush=True)
            syn = timed(["tfrec", "data", "synthesize", "--layout", "ml-32m", "--out", str(data), *layout_args],
                        log=work / f"synthesize-{n}.log")
            print(f"[scale]   {syn['seconds']:.0f} s, peak RSS {syn['rss'] / GIB:.2f} GiB", file=sys.stderr)
        prep_dir = work / f"prepared-{n}"
        prep = reused(work / f"prepare-{n}.log", args.reuse and (prep_dir / "prepared.json").is_file())
        if prep is None:
            print(f"[scale] preparing {prep_dir}", file=sys.stderr, flush=True)
            prep = timed(["tfrec", "data", "prepare", "--dataset", "ml-32m", "--data-dir", str(data), "--split",
                          "leave_last_out", "--out", str(prep_dir), "--overwrite", "--json"],
                         log=work / f"prepare-{n}.log")
        meta = json.loads((prep_dir / "prepared.json").read_text())
        run_dir = work / f"run-{n}"
        tr = reused(work / f"train-{n}.log", args.reuse and (run_dir / "metrics.json").is_file())
        if tr is None:
            shutil.rmtree(run_dir, ignore_errors=True)
            print(f"[scale] training {args.model} on {prep_dir}", file=sys.stderr, flush=True)
            tr = timed(["tfrec", "train", args.model, "--prepared", str(prep_dir), "--epochs", "1",
                        "--steps-per-epoch", str(args.steps_per_epoch), "--eval-users", str(args.eval_users),
                        "--output", str(run_dir), "--no-tensorboard", "--no-plots", "--json"],
                       log=work / f"train-{n}.log")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        # The whole capped epoch, tracing and the first buffer fill included (what a user waits for),
        # and, when recorded, the steady state after the first step call.
        eps = metrics.get("examples_per_second_with_startup", metrics["examples_per_second"])
        steady = metrics["examples_per_second"] if "examples_per_second_with_startup" in metrics else None
        row = {"ratings": n, "users": meta["counts"]["users"], "items": meta["counts"]["items"],
               "train_examples": meta["counts"]["train"], "shards": len(meta["shards"]),
               "prepare_seconds": prep["seconds"], "prepare_rss": prep["rss"],
               "train_examples_per_second": eps, "train_examples_per_second_steady": steady,
               "train_rss": tr["rss"], "train_command_seconds": tr["seconds"],
               "epoch_seconds_extrapolated": meta["counts"]["train"] / (steady or eps),
               "eval_seconds_per_1000_users": metrics["full"]["seconds_per_1000_users"],
               "eval_users": metrics["full"]["n_users"], "ndcg@10": metrics["full"]["ndcg@10"],
               "steps_per_epoch": args.steps_per_epoch}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    if args.export_largest and rows:
        n = rows[-1]["ratings"]
        base = work / "export"
        card_file = base / "two_tower" / "1" / "assets.extra" / "model_card.json"
        ex = reused(work / "export.log", args.reuse and card_file.is_file())
        if ex is None:
            shutil.rmtree(base, ignore_errors=True)
            print(f"[scale] exporting run-{n} (ScaNN + brute force)", file=sys.stderr, flush=True)
            ex = timed(["tfrec", "export", str(work / f"run-{n}"), "--name", "two_tower", "--base-dir", str(base),
                        "--json"], log=work / "export.log")
        card = json.loads(card_file.read_text())
        test = (work / f"prepared-{n}" / "test.csv").read_text().splitlines()[1]
        served = serve_once(base / "two_tower", "two_tower", test.split(",")[0], log=work / "serve.log")
        rows[-1].update({"export_seconds": ex["seconds"], "export_rss": ex["rss"],
                         "export_index": card.get("index", {}), "serve": served})
        print(json.dumps({k: rows[-1][k] for k in ("export_seconds", "export_rss", "serve")}), file=sys.stderr)

    print(f"\nOut-of-core scaling: {args.model}, leave-last-out split, one epoch capped at {args.steps_per_epoch} "
          f"steps (~ = extrapolated from examples/s), full-ranking evaluation on {args.eval_users} sampled users; "
          f"each step a subprocess under /usr/bin/time -v ({os.cpu_count()} CPUs)")
    head = ("| ratings | users | items | prepare s | prepare peak RSS | train ex/s (with startup; steady) "
            "| train peak RSS | one epoch | eval s / 1k users | NDCG@10 |")
    print(head)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        steady = r.get("train_examples_per_second_steady")
        print(f"| {r['ratings']:,} | {r['users']:,} | {r['items']:,} | {r['prepare_seconds']:.0f} | "
              f"{r['prepare_rss'] / GIB:.2f} GiB | {r['train_examples_per_second']:,.0f}"
              f"{f'; {steady:,.0f}' if steady else ''} | "
              f"{r['train_rss'] / GIB:.2f} GiB | ~{r['epoch_seconds_extrapolated'] / 60:.0f} min | {r['eval_seconds_per_1000_users']:.1f} | "
              f"{r['ndcg@10']:.4f} |")
    last = rows[-1] if rows else {}
    if "serve" in last:
        s = last["serve"]
        print(f"\nexport of the {last['items']:,}-item catalog (ScaNN + brute force): {last['export_seconds']:.0f} s, "
              f"peak RSS {last['export_rss'] / GIB:.2f} GiB, ScaNN recall@10 vs brute force "
              f"{last['export_index'].get('recall_at_10_vs_bruteforce', float('nan')):.3f}; tfrec serve loaded it in "
              f"{s['load_seconds']:.0f} s and answered a request in {s['request_seconds'] * 1000:.0f} ms, the same "
              f"request again in {s['second_request_seconds'] * 1000:.0f} ms ({s['n_items']} items)")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        f = b["ratings"] / a["ratings"]
        print(f"\n{f:.0f}x the ratings: prepare time x{b['prepare_seconds'] / a['prepare_seconds']:.1f}, prepare RSS "
              f"x{b['prepare_rss'] / a['prepare_rss']:.1f}, train RSS x{b['train_rss'] / a['train_rss']:.1f}, "
              f"examples/s x{b['train_examples_per_second'] / a['train_examples_per_second']:.2f}, eval per user "
              f"x{b['eval_seconds_per_1000_users'] / a['eval_seconds_per_1000_users']:.1f} (catalog "
              f"x{b['items'] / a['items']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
