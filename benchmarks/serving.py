"""Serving benchmark: requests/s and p50/p99 latency of `tfrec serve` on loopback.

    python benchmarks/serving.py [--model-base-path export/two_tower_bruteforce] [--requests 3000]

Starts `tfrec serve` (127.0.0.1, a free port) with batching off and then on, and drives it with
an asyncio HTTP client (httpx) in this process at concurrency 1, 8 and 32; each request is a
`serving_default` recommend for one user (row format). Without --model-base-path it first trains a
small two-tower model on synthetic data and exports it. Bounded: --requests per level, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build_export(workdir: Path) -> tuple[Path, list]:
    import tfrec
    from tfrec.data import synthetic_movielens
    from tfrec.export import export_model

    data = synthetic_movielens(n_users=1000, n_items=1500, n_ratings=40000, seed=0)
    result = tfrec.train("two_tower", data, split="leave_last_out", epochs=2, verbose=0, output=workdir / "run")
    export_model(result.run_dir, name="two_tower", base_dir=workdir / "export", scann=False)
    return workdir / "export" / "two_tower_bruteforce", list(result.model.user_index_)


def _start(base: Path, batching: bool, workdir: Path):
    port = _free_port()
    cmd = [sys.executable, "-m", "tfrec.cli", "serve", "--model_name", "recs", "--model_base_path", str(base),
           "--rest_api_port", str(port), "--file_system_poll_wait_seconds", "0"]
    if batching:
        cfg = workdir / "batching.config"
        cfg.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 2000 }\n")
        cmd += ["--enable_batching", "--batching_parameters_file", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/recs", timeout=2).read()
            return proc, port
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("server did not start")
            time.sleep(0.3)


async def _load(port: int, users: list, concurrency: int, n_requests: int) -> dict:
    import httpx

    url = f"http://127.0.0.1:{port}/v1/models/recs:predict"
    latencies: list = []
    errors = 0
    counter = iter(range(n_requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker():
            nonlocal errors
            for i in counter:
                body = json.dumps({"instances": [{"user_id": users[i % len(users)]}]})
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        # warm-up, then the measured run
        await asyncio.gather(*[client.post(url, json={"instances": [{"user_id": users[0]}]}) for _ in range(8)])
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1e3
    return {"rps": len(lat) / elapsed, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "errors": errors}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-base-path", default=None, help="a retrieval export's base path (integer versions)")
    p.add_argument("--users", default=None, help="comma-separated user ids to request (default: 1..943)")
    p.add_argument("--requests", type=int, default=3000, help="requests per concurrency level")
    p.add_argument("--concurrency", default="1,8,32")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tfrec-serving-bench-"))
    if args.model_base_path:
        base = Path(args.model_base_path)
        users = args.users.split(",") if args.users else [str(i) for i in range(1, 944)]
    else:
        base, users = _build_export(workdir)
    levels = [int(c) for c in args.concurrency.split(",")]
    print("| batching | concurrency | requests/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|")
    results = {}
    for batching in (False, True):
        proc, port = _start(base, batching, workdir)
        try:
            for c in levels:
                n = min(args.requests, 300) if c == 1 else args.requests
                r = asyncio.run(_load(port, users, c, n))
                results[(batching, c)] = r
                print(f"| {'on' if batching else 'off'} | {c} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                      f"{r['errors']} |", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    best = max((results[(b, 32)] for b in (False, True) if (b, 32) in results), key=lambda r: r["rps"], default=None)
    if best is not None:
        print(f"\nTarget at concurrency 32: >= 1,000 requests/s with p99 <= 50 ms; best measured: "
              f"{best['rps']:.0f} requests/s, p99 {best['p99']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
