"""Serving benchmark: requests/s and p50/p99 latency of `tfrec serve` on loopback.

    python benchmarks/serving.py [--model-base-path export/two_tower_bruteforce] [--duration 10]
                                 [--load-generator auto|wrk|python] [--protocol rest|grpc|both]

Starts `tfrec serve` (127.0.0.1, free REST and gRPC ports) with batching off and then on, and drives
it at concurrency 1, 8 and 32; each request is a `serving_default` recommend for one user (REST: row
format; gRPC: a PredictRequest with a [1] string tensor; users in rotation). Without --model-base-path it first trains a small two-tower model on synthetic
data and exports it.

Load generator: `wrk` (an external C load generator: `apt-get install wrk`) when it is on PATH,
with a small Lua script written to a temp file that rotates the POST bodies; otherwise a bare
asyncio HTTP/1.1 client in this process, which on a 2-core machine takes CPU from the server and so
understates it. The table says which one produced the numbers, and the machine's load average.
Bounded: --duration seconds per level with wrk, --requests per level with the Python client;
loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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


def _start(base: Path, batching: bool, workdir: Path, args):
    """`tfrec serve` on free REST and gRPC ports -> (process, REST port, gRPC port)."""
    port, grpc_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "tfrec.cli", "serve", "--model_name", "recs", "--model_base_path", str(base),
           "--rest_api_port", str(port), "--port", str(grpc_port), "--file_system_poll_wait_seconds", "0"]
    if batching:
        cfg = workdir / "batching.config"
        cfg.write_text(_batching_text(args))
        cmd += ["--enable_batching", "--batching_parameters_file", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/recs", timeout=2).read()
            return proc, port, grpc_port
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("server did not start")
            time.sleep(0.3)


def _cpu_busy(seconds: float = 1.0) -> str:
    """How busy the machine is right now (before our server starts): % of all CPUs over ``seconds``."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except OSError:  # not Linux
        return "n/a"
    return f"{100 * (1 - (i1 - i0) / max(1, t1 - t0)):.0f}% of {os.cpu_count()} CPUs busy"


class _CpuMeter:
    """CPU use during one level, in cores: the server process, the load generator, everything else."""

    def __init__(self, server_pid: int):
        self.pid = server_pid
        self.hz = os.sysconf("SC_CLK_TCK")

    def _sample(self):
        import resource

        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        server = int(fields[11]) + int(fields[12])  # utime + stime, all threads
        gen = sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for a in ("ru_utime", "ru_stime"))  # this process + finished children (wrk)
        return sum(v), v[3] + v[4], server, gen * self.hz

    def __enter__(self):
        try:
            self.start = self._sample()
        except OSError:
            self.start = None
        return self

    def __exit__(self, *exc):
        self.cores = None
        if self.start is None:
            return
        t, idle, server, gen = (b - a for a, b in zip(self.start, self._sample()))
        per_cpu = t / os.cpu_count()
        if per_cpu > 0:
            busy = (t - idle) / per_cpu
            self.cores = {"server": server / per_cpu, "generator": gen / per_cpu,
                          "other": max(0.0, busy - server / per_cpu - gen / per_cpu)}


def _batching_text(args) -> str:
    return (f"max_batch_size {{ value: {args.max_batch_size} }}\n"
            f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
            f"num_batch_threads {{ value: {args.num_batch_threads} }}\n")


# ------------------------------------------------------------------------------------------------ wrk
_WRK_LUA = """
local users = {%(users)s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, '{"instances": [{"user_id": "' .. users[(i %% #users) + 1] .. '"}]}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _wrk_script(workdir: Path, users: list) -> Path:
    path = workdir / "predict.lua"
    path.write_text(_WRK_LUA % {"users": ", ".join(json.dumps(str(u)) for u in users)})
    return path


def _wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).split("[")[0].strip() or "wrk"


def _wrk_load(wrk: str, script: Path, port: int, concurrency: int, seconds: float) -> dict:
    url = f"http://127.0.0.1:{port}/v1/models/recs:predict"
    base = [wrk, "-t1", f"-c{concurrency}", "--timeout", "10s", "-s", str(script)]
    subprocess.run(base + ["-d2s", url], capture_output=True, check=True)  # warm-up
    out = subprocess.run(base + [f"-d{max(1, round(seconds))}s", url], capture_output=True, text=True, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"] / 1e3, "p99": r["p99_us"] / 1e3,
            "errors": r["errors"], "requests": r["requests"]}


# ------------------------------------------------------------------------------------------------ grpc
# The gRPC load generator: a separate process (grpc.aio, one channel, `concurrency` calls in flight),
# so it takes its CPU outside the server like wrk does. Prints one RESULT line.
_GRPC_CLIENT = r"""
import asyncio, json, sys, time
import grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

port, concurrency, seconds, users = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split(",")

def request(user):
    r = predict_pb2.PredictRequest()
    r.model_spec.name = "recs"
    t = r.inputs["user_id"]
    t.dtype = types_pb2.DT_STRING
    t.tensor_shape.dim.add().size = 1
    t.string_val.append(user.encode())
    return r

async def main():
    requests = [request(u) for u in users]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        lat, errors, i = [], 0, [0]
        async def worker(until, record):
            nonlocal errors
            while time.perf_counter() < until:
                i[0] += 1
                t0 = time.perf_counter()
                try:
                    await stub.Predict(requests[i[0] % len(requests)], timeout=10)
                    if record:
                        lat.append(time.perf_counter() - t0)
                except grpc.RpcError:
                    errors += 1
        await asyncio.gather(*[worker(time.perf_counter() + 2, False) for _ in range(concurrency)])  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*[worker(start + seconds, True) for _ in range(concurrency)])
        elapsed = time.perf_counter() - start
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else float("nan")
    print("RESULT " + json.dumps({"rps": len(lat) / elapsed, "p50": pct(0.5), "p99": pct(0.99), "errors": errors,
                                  "requests": len(lat)}))

asyncio.run(main())
"""


def _grpc_load(port: int, users: list, concurrency: int, seconds: float) -> dict:
    out = subprocess.run([sys.executable, "-c", _GRPC_CLIENT, str(port), str(concurrency), str(seconds),
                          ",".join(str(u) for u in users)], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


# ------------------------------------------------------------------------------------------------ python
async def _post(reader, writer, request: bytes) -> int:
    """One keep-alive HTTP/1.1 POST on an open connection -> status code (the body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _load(port: int, users: list, concurrency: int, n_requests: int) -> dict:
    """The fallback load generator: ``concurrency`` keep-alive connections in this process.

    A bare asyncio HTTP/1.1 client (the server sends Content-Length bodies), far lighter than a
    general-purpose client, so less of the machine goes to generating load."""
    path = "/v1/models/recs:predict"
    requests = []
    for u in users:
        body = json.dumps({"instances": [{"user_id": u}]}).encode()
        requests.append(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    latencies: list = []
    errors = 0
    counter = iter(range(n_requests))
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]

    async def worker(reader, writer):
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            status = await asyncio.wait_for(_post(reader, writer, requests[i % len(requests)]), 30)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    try:
        for reader, writer in conns:  # warm-up
            await _post(reader, writer, requests[0])
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(r, w) for r, w in conns])
        elapsed = time.perf_counter() - t0
    finally:
        for _, writer in conns:
            writer.close()
    lat = np.array(latencies) * 1e3
    return {"rps": len(lat) / elapsed, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "errors": errors, "requests": len(lat)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-base-path", default=None, help="a retrieval export's base path (integer versions)")
    p.add_argument("--users", default=None, help="comma-separated user ids to request (default: 1..943)")
    p.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto",
                   help="auto: wrk when it is on PATH, else the in-process Python client (default: %(default)s)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency level with wrk")
    p.add_argument("--requests", type=int, default=3000, help="requests per concurrency level (Python client)")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--max-batch-size", type=int, default=64, help="batching on: max_batch_size")
    p.add_argument("--batch-timeout-micros", type=int, default=0,
                   help="batching on: batch_timeout_micros (0: a free batch thread takes what is queued)")
    p.add_argument("--num-batch-threads", type=int, default=1, help="batching on: num_batch_threads")
    p.add_argument("--protocol", choices=["rest", "grpc", "both"], default="rest",
                   help="REST (wrk or the Python client) and/or gRPC (a grpc.aio client process with "
                        "--duration seconds per level) (default: %(default)s)")
    args = p.parse_args(argv)
    wrk = shutil.which("wrk") if args.load_generator in ("auto", "wrk") else None
    if args.load_generator == "wrk" and wrk is None:
        p.error("--load-generator wrk: wrk is not on PATH (apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="tfrec-serving-bench-"))
    if args.model_base_path:
        base = Path(args.model_base_path)
        users = args.users.split(",") if args.users else [str(i) for i in range(1, 944)]
    else:
        base, users = _build_export(workdir)
    levels = [int(c) for c in args.concurrency.split(",")]
    if wrk:
        script = _wrk_script(workdir, users)
        generator = f"{_wrk_version(wrk)} (external, 1 thread, {args.duration:g} s per level)"
    else:
        generator = f"Python asyncio client in the benchmark process ({args.requests} requests per level)"
    print(f"Load generator: {generator}")
    print(f"Machine: {os.cpu_count()} CPUs; before measuring: {_cpu_busy()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("Batching on: " + _batching_text(args).replace("\n", "; ").strip("; "))
    print("CPU columns: cores used during the level (incl. the wrk warm-up) by the server, the load generator, "
          "and everything else on the machine")
    protocols = ["rest", "grpc"] if args.protocol == "both" else [args.protocol]
    if "grpc" in protocols:
        print(f"gRPC load generator: grpc.aio client process (one channel, {args.duration:g} s per level after a "
              f"2 s warm-up)")
    print("\n| protocol | batching | concurrency | requests/s | p50 ms | p99 ms | requests | errors | server CPU | "
          "generator CPU | other CPU |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for batching in (False, True):
        proc, port, grpc_port = _start(base, batching, workdir, args)
        try:
            for protocol in protocols:
                for c in levels:
                    with _CpuMeter(proc.pid) as meter:
                        if protocol == "grpc":
                            r = _grpc_load(grpc_port, users, c, args.duration)
                        elif wrk:
                            r = _wrk_load(wrk, script, port, c, args.duration)
                        else:
                            n = min(args.requests, 300) if c == 1 else args.requests
                            r = asyncio.run(_load(port, users, c, n))
                    results[(protocol, batching, c)] = r
                    cpu = (" | ".join(f"{meter.cores[k]:.2f}" for k in ("server", "generator", "other"))
                           if meter.cores else "n/a | n/a | n/a")
                    print(f"| {protocol} | {'on' if batching else 'off'} | {c} | {r['rps']:.0f} | {r['p50']:.1f} | "
                          f"{r['p99']:.1f} | {r['requests']} | {r['errors']} | {cpu} |", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nLoad average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for protocol in protocols:
        r = results.get((protocol, True, 32))
        if r is not None:
            met = r["rps"] >= 4000 and r["p99"] <= 20
            print(f"{protocol}, batching on, concurrency 32 (target >= 4,000 requests/s, p99 <= 20 ms): "
                  f"{r['rps']:.0f} requests/s, p99 {r['p99']:.1f} ms ({'met' if met else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
