"""Seeded fuzzing of `tfrec serve`'s REST API: no 5xx and only JSON errors for anything a client sends.

    python benchmarks/serving_fuzz.py [--requests 10000] [--seed 0] [--model-base-path DIR ...]

Starts `tfrec serve` on 127.0.0.1 (a free port, gRPC off) with TF Serving-like half_plus_two models
(built into a temp dir by tests/serving/tf_serving_models.py) plus any exports given, then sends
seeded malformed requests over raw sockets: any HTTP method token (OPTIONS, PATCH, TRACE, ...),
paths with percent-encoded newlines, Unicode digits, 20k-character segments, and bodies with bytes
that are not UTF-8, lone surrogates, nesting thousands of levels deep, integers of thousands of
digits, numbers beyond double range, non-object documents, wrong types everywhere. Prints a table
of answers by status and checks: no 5xx, every error body a JSON object with an "error" string, and
the server still answering a known request correctly afterwards. Requests are well-formed HTTP/1.1
(broken HTTP framing is the HTTP server's to refuse, as libevent does for TF Serving).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

METHODS = ["GET", "POST", "POST", "POST", "POST", "GET", "OPTIONS", "PATCH", "TRACE", "PUT", "DELETE",
           "PROPFIND", "HEAD"]
VERBS = ["predict", "classify", "regress", "PREDICT", "Predict", "explain", ""]


def _atom(rng: random.Random) -> str:
    return rng.choice([
        "1", "-1", "0", "1.5", "1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "null", "true",
        "false", '"x"', '""', '"\\ud800"', '"\\udc00x"', '"\\u0000"', '{"b64": "!!"}', '{"b64": "eA=="}',
        '{"b64": 1}', "[]", "{}", "9" * rng.randint(19, 30), "9" * rng.randint(300, 5000),
        "-" + "9" * rng.randint(20, 400), "2147483648", "18446744073709551616", '"\\uZZZZ"',
    ])


def _value(rng: random.Random, depth: int = 0) -> str:
    if depth > 4 or rng.random() < 0.35:
        return _atom(rng)
    kind = rng.random()
    if kind < 0.45:
        return "[" + ", ".join(_value(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    keys = ["x", "x2", "user_id", "item_id", "k", "exclude_item_ids", "inputs", "b64", "\\ud800", ""]
    return "{" + ", ".join(f'"{rng.choice(keys)}": {_value(rng, depth + 1)}' for _ in range(rng.randint(0, 3))) + "}"


def _body(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.05:
        return b""
    if r < 0.10:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    if r < 0.14:
        n = rng.choice([100, 1000, 5000, 50_000, 200_000])
        return (rng.choice(["[", "{\"a\":"]) * n).encode()
    if r < 0.18:
        return rng.choice([b"null", b"[1, 2]", b'"text"', b"42", b"true", b"[]", b"[{}]"])
    if r < 0.22:
        return b'{"instances": [1.0]}' + bytes([rng.choice([0xff, 0xc3, 0xe2, 0x80])]) + b"]}"
    key = rng.choice(["instances", "inputs", "examples", "context", "signature_name", "zz"])
    doc = {key: _value(rng)}
    if rng.random() < 0.5:
        doc[rng.choice(["signature_name", "examples", "context", "inputs"])] = _value(rng)
    if rng.random() < 0.3:
        doc["signature_name"] = rng.choice(['"serving_default"', '"regress_x_to_y"', '"classify_x_to_y"',
                                            '"recommend"', '"similar_items"', '["regress_x_to_y"]', "1", "null"])
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in doc.items()) + "}"
    if rng.random() < 0.1:
        text += rng.choice([" trailing", "}", "]", ","])
    return text.encode("utf-8", "surrogatepass")


def _path(rng: random.Random, models: list) -> str:
    if rng.random() < 0.08:
        return rng.choice(["/", "/v1", "/v1/", "/v2/models/x", "/index", "/v1/models/", "/monitoring/x",
                           "/v1/models/%0A:predict", "/v1/%0Amodels", "/v1/models/a%0Ab/metadata",
                           "/" + "a" * rng.choice([2000, 20_000]), "/v1/models/" + "m" * rng.choice([300, 20_000])])
    name = rng.choice(models + ["nope", "%41", "a%2Fb", "\u00e9", "%ZZ", "default%0A"])
    path = "/v1/models/" + name
    r = rng.random()
    if r < 0.25:
        path += "/versions/" + rng.choice(["123", "1", "124", "0", "\u0661\u0662\u0663", "１２３", "-1", "1.0",
                                           "9" * 19, "9" * 25, "abc", ""])
    elif r < 0.4:
        path += "/labels/" + rng.choice(["stable", "canary", "nope", "%ZZ", "a%0Ab", ""])
    if rng.random() < 0.2:
        path += "/metadata"
    elif rng.random() < 0.85:
        path += ":" + rng.choice(VERBS)
    if rng.random() < 0.05:
        path += rng.choice(["?x=1", "/", "//", "#frag"])
    return "".join(c if ord(c) < 128 else "%" + "%".join(f"{b:02X}" for b in c.encode()) for c in path)


def _near_valid(rng: random.Random, models: list):
    """A request that is almost right: valid shape, values that the graph itself must refuse or accept."""
    ids = [rng.choice(['"1"', '"2"', '"50"', '"no-such-id"', '""', '"\u00e9"', '{"b64": "MQ=="}', "1", "null"])
           for _ in range(rng.randint(1, 3))]
    k = rng.choice(["0", "1", "3", "-1", "10", "100", "101", "5000", "2147483647", "2147483648", "1.5", '"3"'])
    recommenders = [m for m in models if m not in ("default", "tf2", "hp2v")]
    if recommenders and rng.random() < 0.6:
        name = rng.choice(recommenders)
        body = rng.choice([
            f'{{"signature_name": "recommend", "inputs": {{"user_id": [{ids[0]}], "k": {k}, '
            f'"exclude_item_ids": [[{", ".join(ids)}]]}}}}',
            f'{{"signature_name": "similar_items", "inputs": {{"item_id": [{", ".join(ids)}], "k": {k}}}}}',
            f'{{"instances": [{", ".join("{" + chr(34) + "user_id" + chr(34) + ": " + i + "}" for i in ids)}]}}',
            f'{{"instances": [{{"user_id": {ids[0]}, "item_id": {ids[-1]}}}]}}',
            f'{{"signature_name": "item_embedding", "inputs": {{"item_id": [{", ".join(ids)}]}}}}',
        ])
        return "POST", f"/v1/models/{name}:predict", body.encode()
    name = rng.choice(["default", "tf2", "hp2v"])
    x = rng.choice(["2.0", "[2.0]", "[[2.0]]", "[[[2.0]]]", "[]", '"a"', "1e38", "NaN"])
    verb = rng.choice(["predict", "regress", "classify"])
    if verb == "predict":
        body = rng.choice([f'{{"instances": [{x}, {x}]}}', f'{{"inputs": {x}}}', f'{{"inputs": {{"x": {x}}}}}'])
    else:
        sig = rng.choice(["regress_x_to_y", "regress_x2_to_y3", "classify_x_to_y", "serving_default",
                          "regress_x_to_y2"])
        feat = rng.choice(["x", "x2", "y"])
        body = f'{{"signature_name": "{sig}", "examples": [{{"{feat}": {x}}}]}}'
        if rng.random() < 0.3:
            body = body[:-1] + f', "context": {{"x": {x}}}}}'
    return "POST", f"/v1/models/{name}:{verb}", body.encode()


def generate(seed: int, n: int, models: list):
    """``n`` seeded (method, path, body) requests."""
    rng = random.Random(seed)
    for _ in range(n):
        if rng.random() < 0.3:
            yield _near_valid(rng, models)
            continue
        method = rng.choice(METHODS)
        yield method, _path(rng, models), _body(rng) if method not in ("GET", "OPTIONS") or rng.random() < 0.2 else b""


def send(port: int, method: str, path: str, body: bytes, timeout: float = 30.0, origin: bool = False):
    """One HTTP/1.1 request on a fresh connection -> (status, body bytes)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if origin:
        head += "Origin: http://example.com\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + body)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():
        out, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        payload = out
    return status, payload


def check(method: str, status: int, payload: bytes) -> str:
    """'' when the answer is acceptable, else what is wrong."""
    if status >= 500:
        return f"status {status}"
    if method == "HEAD" or status == 200:
        return ""
    try:
        doc = json.loads(payload)
    except ValueError:
        return "error body is not JSON"
    if not (isinstance(doc, dict) and isinstance(doc.get("error"), str)):
        return "error body is not {\"error\": ...}"
    return ""


def run(port: int, seed: int, n: int, models: list, verbose: bool = False) -> dict:
    statuses: collections.Counter = collections.Counter()
    problems = []
    for i, (method, path, body) in enumerate(generate(seed, n, models)):
        try:
            status, payload = send(port, method, path, body)
        except OSError as exc:
            problems.append((i, method, path[:80], body[:80], f"connection: {exc}"))
            continue
        statuses[status] += 1
        bad = check(method, status, payload)
        if bad:
            problems.append((i, method, path[:80], body[:80], bad + " " + payload[:120].decode("latin-1")))
    return {"statuses": dict(sorted(statuses.items())), "problems": problems}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-base-path", action="append", default=[],
                   help="NAME=DIR of an export to serve too (repeatable), e.g. tt=/tmp/serving_export/two_tower")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from tf_serving_models import build_all

    work = Path(tempfile.mkdtemp(prefix="tfrec-serving-fuzz-"))
    paths = build_all(work / "models")
    config = ["model_config_list {"]
    entries = {"default": paths["saved_model_half_plus_two_cpu"], "tf2": paths["saved_model_half_plus_two_tf2_cpu"],
               "hp2v": paths["saved_model_half_plus_two_2_versions"]}
    for item in args.model_base_path:
        name, _, base = item.partition("=")
        entries[name] = Path(base).resolve()
    for name, base in entries.items():
        labels = ' version_labels { key: "stable" value: 123 }' if name == "hp2v" else ""
        config.append(f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow"{labels} }}')
    config.append("}")
    (work / "models.config").write_text("\n".join(config))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfrec.cli", "serve", "--model_config_file",
                             str(work / "models.config"), "--rest_api_port", str(port), "--port", "0",
                             "--file_system_poll_wait_seconds", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while True:
            try:
                if send(port, "GET", "/v1/models/default", b"")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.5)
        started = time.time()
        result = run(port, args.seed, args.requests, list(entries))
        status, payload = send(port, "POST", "/v1/models/default:predict", b'{"instances": [2.0]}')
        alive = status == 200 and json.loads(payload) == {"predictions": [3.0]} and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    fivexx = sum(v for k, v in result["statuses"].items() if k >= 500)
    print(f"{args.requests} seeded requests (seed {args.seed}) in {time.time() - started:.0f} s to models "
          f"{', '.join(entries)}")
    print("| status | answers |\n|---:|---:|")
    for k, v in result["statuses"].items():
        print(f"| {k} | {v} |")
    print(f"5xx answers: {fivexx}; problems (5xx, non-JSON error bodies, dropped connections): "
          f"{len(result['problems'])}; server alive and answering correctly afterwards: {alive}")
    for prob in result["problems"][:20]:
        print("  ", prob)
    return 0 if not result["problems"] and alive else 1


if __name__ == "__main__":
    sys.exit(main())
