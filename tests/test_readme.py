"""Every fenced code block in README.md runs as written, or is allowlisted here with a reason.

How each block is handled (keyed by a stable marker: the block's first logical line, matched by
prefix, see ``RUN`` and ``ALLOWLIST``):

* Python blocks run with the venv's ``python`` in a scratch folder laid out like the README assumes
  (``<tmp>/<cwd>/`` beside ``<tmp>/shared/data`` -> the real MovieLens 100K), so ``../shared/data``,
  ``runs/``, ``export/`` and ``serving_configs/`` resolve as they do for a user at the repo root.
* Shell blocks run line by line (``bash -c``, the venv's ``bin`` first on ``PATH``, no
  ``TF_USE_LEGACY_KERAS`` or ``TFREC_DATA_DIR`` in the environment, downloads pointed at a dead
  address so nothing reaches the network). Each command must exit 0 and its output must look right
  (``OUTPUT_CHECKS``); a command without a check fails the test, so new lines need one.
* ``tfrec serve`` lines start a background server on 127.0.0.1 and a free port (the README's 8501
  is replaced in that block's commands), wait until every configured model is AVAILABLE (bounded),
  and the server is stopped when the block ends.

Reductions, each a flag or argument the code really has, with the README text itself unchanged:

* ``tfrec train two_tower ...`` gets ``--epochs 1 --set ensemble_size=1`` appended; the Python
  quickstart's ``tfrec.train("two_tower", ...)`` gets ``epochs=1, ensemble_size=1``. Training the
  default three pairs to convergence on ML-100K takes minutes; the snippet's behaviour (metrics,
  run folder, export, serving) does not depend on it.
* Port 8501 becomes a free port (other servers may hold 8501 on a shared machine).

The heavy blocks are marked ``slow`` and run in two background threads started by one session
fixture (``snippets``): the Python quickstart, then "Loading an export in another TensorFlow
program" on its exports; and, concurrently, the CLI quickstart, then the local-server block on its
exports. The two chains share nothing and each is mostly one core (t-SNE for the two-tower run's
embedding map dominates), so on 2 cores they overlap. The Signatures table (names and stated
dtypes) and the assets.extra claims are checked against the CLI quickstart's exports.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VENV_BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "python").exists() else Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
README_PORT = "8501"
COMMAND_TIMEOUT = 600  # seconds, any single README command
SERVER_READY_TIMEOUT = 180


# ------------------------------------------------------------------------------------------------ parsing
@dataclass
class Block:
    index: int
    lang: str
    text: str
    line: int  # 1-based line of the opening fence in README.md

    @property
    def logical_lines(self) -> list[str]:
        """Lines with backslash continuations joined (as the shell reads them); blank lines dropped."""
        out, parts = [], []
        for raw in self.text.splitlines():
            if raw.rstrip().endswith("\\"):
                parts.append(raw.rstrip()[:-1].strip())
                continue
            parts.append(raw.strip())
            line = " ".join(p for p in parts if p)
            parts = []
            if line:
                out.append(line)
        if parts:
            out.append(" ".join(p for p in parts if p))
        return out

    @property
    def commands(self) -> list[str]:
        """Logical lines that are not comments."""
        return [line for line in self.logical_lines if not line.startswith("#")]

    @property
    def marker(self) -> str:
        """The first logical line without a trailing comment, whitespace collapsed."""
        return " ".join(re.sub(r"\s+#.*$", "", self.logical_lines[0]).split())

    def __str__(self) -> str:
        return f"README.md:{self.line} ```{self.lang} block starting {self.marker!r}"


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise AssertionError(f"README.md:{start + 1}: unclosed code fence")
        blocks.append(Block(index=len(blocks), lang=lang, text="\n".join(body), line=start + 1))
        i += 1
    return blocks


def find_block(prefix: str) -> Block:
    matches = [b for b in readme_blocks() if b.marker.startswith(prefix)]
    assert len(matches) == 1, f"expected one README block starting {prefix!r}, found {len(matches)}"
    return matches[0]


# ------------------------------------------------------------------------------------------------ registry
# marker prefix -> the test that runs the block.
RUN = {
    "import tfrec": "test_python_quickstart",
    "from tfrec.evaluation import": "test_evaluation_import_block",
    "tfrec data describe": "test_cli_quickstart",
    "tfrec serve --model_config_file serving_configs/models.config --rest_api_port 8501 --enable_batching":
        "test_local_server_block",
    "import tensorflow as tf": "test_load_export_in_plain_tensorflow",
    'python -c "from tfrec.data.examples import write_shop_dataset': "test_own_data_block",
}

# marker prefix -> why the block is not run as written (each still gets a cheap static check in
# test_allowlisted_block, so a wrong script, flag or path in it still fails).
ALLOWLIST = {
    "make demo": "`make test` is this suite (running it here would recurse); `make demo` trains on ML-100K for "
                 "minutes. Checked: both Makefile targets exist (`make -n`) and demo runs `tfrec demo`.",
    "docker compose -f serving_configs/docker-compose.yml up":
        "needs Docker and the tensorflow/serving image. Checked: the compose file and every config it mounts "
        "exist; its curl line runs against `tfrec serve` (same REST API) in test_local_server_block, and the "
        "models models.docker.config serves are exported by the CLI quickstart.",
    "python benchmarks/ranking.py": "benchmark reproduction (every ranking model on ML-100K, 3 seeds, an hour). "
                                    "Checked: script and flags exist.",
    "python benchmarks/ann.py": "benchmark reproduction (1M x 64 embeddings, minutes and GBs). Checked: script "
                                "exists.",
    "python benchmarks/serving.py": "benchmark reproduction (thousands of requests per setting). Checked: script "
                                    "and flags exist.",
    "python benchmarks/data_pipeline.py": "benchmark reproduction (minutes). Checked: scripts and flags exist; "
                                          "the `tfrec train mf` line parses with the real CLI parser (the same "
                                          "training runs in test_cli_quickstart).",
    "# Ranking on other data": "benchmark reproduction on data this repo does not ship (ML-1M, your own folder; "
                               "minutes to hours). Checked: the script and every flag exist; "
                               "tests/test_ranking_benchmark.py runs the same flags on small ML-1M-layout, "
                               "CSV-family and schema.json folders.",
    "tfrec bench ranking": "benchmark reproduction through the CLI (`tfrec bench` runs benchmarks/ranking.py with the "
                           "rest of the line; minutes). Checked: the bench subcommand parses and the script has "
                           "every flag.",
    "tfrec tune": "tuning reproduction (Optuna trials on ML-100K and a synthetic-shapes benchmark, minutes). "
                  "Checked: the tfrec lines parse with the real CLI parser and the script and its flags exist; "
                  "tests/test_tuning.py runs tune then train --config on synthetic data.",
    "python benchmarks/train_throughput.py": "benchmark reproduction (one epoch of 300,000 ratings per model, "
                                             "minutes). Checked: script and flags exist.",
    "# Two-tower optimizers at ML-1M's": "benchmark reproduction (one epoch of 300,000 ratings per row at two "
                                        "table sizes, minutes). Checked: script and flags exist.",
    "# Rating models' optimizers at ML-1M's": "benchmark reproduction (one epoch of 300,000 ratings per row at "
                                             "two table sizes, minutes). Checked: script and flags exist.",
    "tfrec/": "the package layout, not a command. Checked: every listed top-level folder and module exists.",
    "tfrec data synthesize --layout ml-32m": "writes 32M ratings and trains on them (tens of minutes, GBs; "
                                             "benchmarks/scale.py runs it). Checked: every line parses with the "
                                             "real CLI parser; tests/test_streaming.py runs the same commands small.",
    "python benchmarks/scale.py": "benchmark reproduction (synthesizes and prepares up to 32M ratings, an hour on "
                                  "2 cores). Checked: script and flags exist.",
    "export TF_CONFIG=": "multi-machine commands (addresses of other hosts). Checked: every TF_CONFIG in the block "
                         "parses with tfrec's own checks and every tfrec line with the CLI parser; the same "
                         "commands run on loopback in tests/distributed/test_multi_worker.py.",
    "CLUSTER=": "multi-machine commands (addresses of other hosts). Checked: as the multi_worker block; the "
                "parameter-server cluster runs in-process in tests/distributed/test_parameter_server.py.",
    "{": "an example schema.json, not a command. Checked: it parses and validates as a tfrec Schema and names "
         "the files and features of the shop the `Your own data` block writes.",
}


def coverage_problems(blocks: list[Block]) -> list[str]:
    """Blocks neither run nor allowlisted, blocks matched twice, and stale or ambiguous entries."""
    problems = []
    for block in blocks:
        hits = [p for p in (*RUN, *ALLOWLIST) if block.marker.startswith(p)]
        if not hits:
            problems.append(f"{block}: no test runs it and it is not allowlisted in tests/test_readme.py "
                            "(add it to RUN with a test, or to ALLOWLIST with a reason and a check)")
        elif len(hits) > 1:
            problems.append(f"{block}: matched by several entries {hits}")
    for prefix in (*RUN, *ALLOWLIST):
        n = sum(b.marker.startswith(prefix) for b in blocks)
        if n != 1:
            problems.append(f"tests/test_readme.py entry {prefix!r} matches {n} README blocks (stale or ambiguous)")
    return problems


def test_every_block_is_run_or_allowlisted():
    blocks = readme_blocks()
    assert len(blocks) >= 10, "README parsing found suspiciously few code blocks"
    assert not coverage_problems(blocks), "\n".join(coverage_problems(blocks))
    module = sys.modules[__name__]
    for prefix, test_name in RUN.items():
        assert callable(getattr(module, test_name, None)), f"RUN[{prefix!r}] names a missing test {test_name}"
    assert set(ALLOWLIST) == set(ALLOWLIST_CHECKS) and all(r.strip() for r in ALLOWLIST.values())


def test_a_new_block_is_caught():
    text = README.read_text() + "\n```\ntfrec train fm --dataset ml-100k\n```\n"
    problems = coverage_problems(readme_blocks(text))
    assert len(problems) == 1 and "'tfrec train fm --dataset ml-100k'" in problems[0], problems
    gone = README.read_text().replace("python benchmarks/ann.py", "python benchmarks/ann2.py")
    assert any("matches 0 README blocks" in p for p in coverage_problems(readme_blocks(gone)))


def test_parser_sees_fences_and_continuations():
    text = "x\n```\na \\\n   --b c  # note\n# comment\n\nd\n```\n```python\nprint(1)\n```\n"
    shell, py = readme_blocks(text)
    assert shell.commands == ["a --b c  # note", "d"] and shell.marker == "a --b c"
    assert py.lang == "python" and py.text == "print(1)" and shell.line == 2


# ------------------------------------------------------------------------------------------------ environment
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snippet_env(tmp_root: Path) -> dict:
    """A new user's shell: the venv first on PATH, no tfrec/Keras variables, no network downloads."""
    env = dict(os.environ)
    for key in ("TF_USE_LEGACY_KERAS", "TFREC_DATA_DIR", "PYTHONPATH"):
        env.pop(key, None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TFREC_CACHE"] = str(tmp_root / "empty-cache")
    env["TFREC_MOVIELENS_URL"] = "http://127.0.0.1:9/unreachable"  # a snippet must not depend on downloads
    env["MPLBACKEND"] = "Agg"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@dataclass
class Workspace:
    root: Path  # holds shared/data -> the real data
    cwd: Path  # where the README's commands run (stands for the repository root)
    env: dict
    log: list = field(default_factory=list)  # (command, CompletedProcess)


def make_workspace(root: Path, name: str, data_dir: Path) -> Workspace:
    shared = root / "shared"
    if not (shared / "data").exists():
        shared.mkdir(parents=True, exist_ok=True)
        (shared / "data").symlink_to(Path(data_dir).resolve(), target_is_directory=True)
    cwd = root / name
    cwd.mkdir()
    shutil.copytree(REPO / "serving_configs", cwd / "serving_configs")
    return Workspace(root=root, cwd=cwd, env=snippet_env(root))


def run_python_snippet(ws: Workspace, code: str, name: str, *, wrapper_checks: str = "") -> subprocess.CompletedProcess:
    path = ws.cwd / f"{name}.py"
    path.write_text(code + "\n")
    if wrapper_checks:
        runner = f"import runpy, sys; runpy.run_path({str(path)!r}, run_name='__main__'); {wrapper_checks}"
        argv = [PYTHON, "-c", runner]
    else:
        argv = [PYTHON, str(path)]
    proc = subprocess.run(argv, cwd=ws.cwd, env=ws.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    ws.log.append((name, proc))
    assert proc.returncode == 0, f"README python block {name} failed:\n{proc.stdout[-3000:]}\n{_excerpt(proc.stderr)}"
    return proc


def _excerpt(text: str, tail_lines: int = 40) -> str:
    """Failure output worth reading: TF's log noise dropped, tfrec's own frames and the last lines kept."""
    lines = [ln for ln in text.splitlines() if not re.match(r"^(I|W)0000 |^\d{4}-\d\d-\d\d .*\] ", ln)]
    if len(lines) <= 2 * tail_lines:
        return "\n".join(lines)
    ours = [ln for ln in lines[:-tail_lines] if "/tfrec/" in ln or re.match(r"^\w*(Error|Exception)\b", ln.strip())]
    return "\n".join(["...", *ours[-30:], "...", *lines[-tail_lines:]])


# ------------------------------------------------------------------------------------------------ servers
class Server:
    """A `tfrec serve` line from the README, started in the background on a free loopback port."""

    def __init__(self, ws: Workspace, command: str):
        self.ws = ws
        self.command = command
        self.log_path = ws.cwd / f"serve-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ws.cwd, env=ws.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        port = re.search(r"--rest_api_port[ =](\d+)", command)
        assert port, f"README serve line without --rest_api_port: {command}"
        self.url = f"http://127.0.0.1:{port.group(1)}"
        config = re.search(r"--model_config_file[ =](\S+)", command)
        self.models = re.findall(r'name:\s*"([^"]+)"', (ws.cwd / config.group(1)).read_text()) if config else []

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        pending = list(self.models)
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"`{self.command}` exited with {self.proc.returncode}:\n{_excerpt(self.output())}")
            if time.monotonic() > deadline:
                raise AssertionError(f"`{self.command}`: {pending} not AVAILABLE after {SERVER_READY_TIMEOUT}s:\n"
                                     f"{_excerpt(self.output())}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models/{pending[0]}", timeout=5) as r:
                    status = json.load(r)
                if any(v.get("state") == "AVAILABLE" for v in status.get("model_version_status", [])):
                    pending.pop(0)
                    continue
            except OSError:
                pass
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own child's session only
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


# ------------------------------------------------------------------------------------------------ output checks
def _json_out(out: str):
    return json.loads(out)


def check_describe(cmd, out, ws):
    if "--dataset shop" in cmd:  # the "Your own data" block's made-up shop
        assert "ratings: 3,600" in out and "implicit feedback" in out and "item feature title (text)" in out, out
    elif "--json" in cmd:
        summary = _json_out(out)
        assert summary["n_ratings"] == 100_000 and summary["n_users"] == 943, summary
    else:
        assert "ratings: 100,000" in out and "users: 943" in out and "rating histogram" in out, out


def check_train_json(cmd, out, ws):
    metrics = _json_out(out)
    assert metrics["fit_seconds"] > 0 and "hyperparameters" in metrics
    if " mf " in f" {cmd} ":
        assert 0.8 < metrics["rmse"] < 1.0 and 0.6 < metrics["mae"] < 0.85, metrics
    if "--dataset shop" in cmd or "--prepared shop-prepared" in cmd:
        assert 0.0 < metrics["full"]["ndcg@10"] < 1.0 and metrics["full"]["n_users"] == 300, metrics
    elif "two_tower" in cmd:
        assert 0.0 < metrics["full"]["ndcg@10"] < 1.0 and metrics["full"]["n_users"] == 943, metrics
        assert 0.0 < metrics["sampled_100"]["hr@10"] <= 1.0
    if "--output" in cmd:
        argv = shlex.split(cmd, comments=True)
        run_dir = ws.cwd / argv[argv.index("--output") + 1]
        assert (run_dir / "metrics.json").is_file() and (run_dir / "config.json").is_file()


def check_evaluate(cmd, out, ws):
    runs = sorted(p.name for p in (ws.cwd / "runs").iterdir() if p.is_dir())
    assert runs and all(name in out for name in runs), out
    chart = re.search(r"--chart[ =](\S+)", cmd)
    if chart:
        png = ws.cwd / chart.group(1)
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"chart: {chart.group(1)}" in out


def check_export(cmd, out, ws):
    paths = re.findall(r"^exported (\S+)$", out, flags=re.M)
    assert paths, out
    for p in paths:
        assert (ws.cwd / p / "saved_model.pb").is_file(), p
    if "--name shop" in cmd:
        card = json.loads((ws.cwd / paths[0] / "assets.extra" / "model_card.json").read_text())
        assert card["signatures"]["recommend_new_user"]["inputs"] == ["age", "country"], card["signatures"]
    if "two_tower" in cmd:
        assert any("two_tower_bruteforce/" in p for p in paths) and any(re.search(r"two_tower/\d+$", p) for p in paths)


def check_recommend(cmd, out, ws):
    rows = re.findall(r"^\s*(\d+)\. (.+)  \(item (\S+), score (-?[\d.]+)\)$", out, flags=re.M)
    assert len(rows) == 10, out
    assert [int(r[0]) for r in rows] == list(range(1, 11))
    assert sum(bool(re.search(r"\(\d{4}\)$", r[1])) for r in rows) >= 8, f"titles missing: {out}"
    scores = [float(r[3]) for r in rows]
    assert scores == sorted(scores, reverse=True)


def check_curl(cmd, out, ws):
    if ":predict" in cmd:
        body = _json_out(out)
        pred = body["predictions"][0]
        assert len(pred["item_ids"]) == 10 and len(pred["scores"]) == 10, body
        assert all(isinstance(i, str) for i in pred["item_ids"])
        assert pred["scores"] == sorted(pred["scores"], reverse=True)
    elif cmd.rstrip().endswith("/metadata"):
        body = _json_out(out)
        sigs = body["metadata"]["signature_def"]["signature_def"]
        assert {"serving_default", "recommend", "similar_items"} <= set(sigs), sorted(sigs)
    elif "/monitoring/prometheus/metrics" in cmd:
        assert ":tensorflow:serving:request_count" in out and "# TYPE" in out, out[:2000]
    else:
        raise AssertionError(f"no output check for README command {cmd!r}")


def check_data_schema(cmd, out, ws):
    from tfrec.data import Schema

    schema = Schema.from_dict(_json_out(out))
    assert schema.interactions.user_id == "customer" and schema.item_features["tags"] == "multi_categorical", out


def check_prepare(cmd, out, ws):
    argv = shlex.split(cmd, comments=True)
    meta = json.loads((ws.cwd / argv[argv.index("--out") + 1] / "prepared.json").read_text())
    assert f"{meta['counts']['train']:,} training examples" in out, out
    if "--dataset shop" in cmd:  # the "Your own data" block: the schema and its typed features
        assert meta["schema"]["name"] == "shop" and meta["features"]["price"]["dtype"] == "float32", meta
        assert meta["counts"]["test"] == 300 and "rating" not in meta["features"], meta


def check_example_written(cmd, out, ws):
    assert (ws.cwd / "shop" / "schema.json").is_file() and (ws.cwd / "shop" / "events.csv").is_file()


OUTPUT_CHECKS = [
    (r"^python -c \"from tfrec.data.examples import", check_example_written),
    (r"^tfrec data schema\b", check_data_schema),
    (r"^tfrec data describe\b", check_describe),
    (r"^tfrec data prepare\b", check_prepare),
    (r"^tfrec train \S+ .*--json", check_train_json),
    (r"^tfrec evaluate\b", check_evaluate),
    (r"^tfrec export\b", check_export),
    (r"^tfrec recommend\b", check_recommend),
    (r"^curl\b", check_curl),
]


def run_shell_block(ws: Workspace, block: Block, *, port: str, extra_commands=()) -> list[tuple[str, str]]:
    """Run a README shell block's commands in order (plus ``extra_commands`` while its server is up)."""
    servers: list[Server] = []
    done = []
    try:
        for original in [*block.commands, *extra_commands]:
            cmd = re.sub(rf"\b{README_PORT}\b", port, original)
            if re.match(r"^tfrec train two_tower\b", cmd):  # documented reduction (module docstring)
                head, comment = re.match(r"^(.*?)(\s+#.*)?$", cmd).groups()
                cmd = f"{head} --epochs 1 --set ensemble_size=1{comment or ''}"
            if re.match(r"^tfrec serve\b", cmd):
                server = Server(ws, cmd)
                servers.append(server)
                server.wait_ready()
                done.append((original, server.url))
                continue
            checks = [fn for pattern, fn in OUTPUT_CHECKS if re.search(pattern, cmd)]
            assert checks, f"{block}: no output check for {original!r} (add one to OUTPUT_CHECKS)"
            proc = subprocess.run(["bash", "-c", cmd], cwd=ws.cwd, env=ws.env, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
            ws.log.append((cmd, proc))
            assert proc.returncode == 0, (f"{block}: `{original}` exited {proc.returncode}\nstdout:\n"
                                          f"{proc.stdout[-3000:]}\nstderr:\n{_excerpt(proc.stderr)}")
            for check in checks:
                check(cmd, proc.stdout, ws)
            done.append((original, proc.stdout))
    finally:
        for server in servers:
            server.stop()
    return done


# ------------------------------------------------------------------------------------------------ fixtures
PY_QUICKSTART_TWO_TOWER = 'tfrec.train("two_tower", data, '


def _python_quickstart(ws: Workspace) -> str:
    code = find_block("import tfrec").text
    assert code.count(PY_QUICKSTART_TWO_TOWER) == 1, "the reduction below no longer applies; update the test"
    code = code.replace(PY_QUICKSTART_TWO_TOWER, PY_QUICKSTART_TWO_TOWER + "epochs=1, ensemble_size=1, ")  # documented
    return run_python_snippet(ws, code, "python_quickstart").stdout


def _load_export(ws: Workspace) -> str:
    """In a process that never imports tfrec and has no TF_USE_LEGACY_KERAS, as the README says."""
    assert "TF_USE_LEGACY_KERAS" not in ws.env
    checks = ("assert 'tfrec' not in sys.modules, 'the snippet imported tfrec'; "
              "assert 'TF_USE_LEGACY_KERAS' not in __import__('os').environ; print('PLAIN_TF_OK')")
    return run_python_snippet(ws, find_block("import tensorflow as tf").text, "load_export",
                              wrapper_checks=checks).stdout


def _cli_quickstart(ws: Workspace) -> list:
    return run_shell_block(ws, find_block("tfrec data describe"), port=str(_free_port()))


def _local_server(ws: Workspace) -> tuple[list, list]:
    """The "local server" block, plus the Docker block's curl line (`tfrec serve` speaks the same REST
    API and serves the same model names)."""
    docker_curls = [c for c in find_block("docker compose").commands if c.startswith("curl ")]
    assert docker_curls
    return run_shell_block(ws, find_block("tfrec serve --model_config_file"), port=str(_free_port()),
                           extra_commands=docker_curls), docker_curls


def _after(first, then, ws):
    def step():
        first.result()  # re-raises the earlier block's failure
        return then(ws)
    return step


@pytest.fixture(scope="session")
def snippets(ml100k_dir, tmp_path_factory):
    """The heavy blocks, started together in two background threads, each in its own scratch folder.

    Python thread: the Python quickstart, then "Loading an export ..." on its exports.
    CLI thread: the CLI quickstart, then the local-server block (and Docker's curl) on its exports.
    Each single-worker pool runs its two steps in order; the tests only collect and check results.
    """
    root = tmp_path_factory.mktemp("readme")
    py_ws = make_workspace(root, "py", ml100k_dir)
    cli_ws = make_workspace(root, "cli", ml100k_dir)
    py_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readme-py")
    cli_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readme-cli")
    futures = {"python_quickstart": py_pool.submit(_python_quickstart, py_ws),
               "cli_quickstart": cli_pool.submit(_cli_quickstart, cli_ws)}
    futures["load_export"] = py_pool.submit(_after(futures["python_quickstart"], _load_export, py_ws))
    futures["local_server"] = cli_pool.submit(_after(futures["cli_quickstart"], _local_server, cli_ws))
    yield {"py": py_ws, "cli": cli_ws, **futures}
    py_pool.shutdown(wait=True)
    cli_pool.shutdown(wait=True)


RESULT_TIMEOUT = 4 * COMMAND_TIMEOUT


# ------------------------------------------------------------------------------------------------ blocks that run
def test_evaluation_import_block(tmp_path, ml100k_dir):
    block = find_block("from tfrec.evaluation import")
    ws = make_workspace(tmp_path, "repo", ml100k_dir)
    names = [n.strip() for n in re.search(r"import (.+)$", block.text.strip(), flags=re.M).group(1).split(",")]
    checks = "".join(f"\nassert callable({n}), {n!r}" for n in names)
    run_python_snippet(ws, block.text + checks, "evaluation_import")


@pytest.mark.slow
def test_python_quickstart(snippets):
    ws, out = snippets["py"], snippets["python_quickstart"].result(timeout=RESULT_TIMEOUT)
    print(out)
    lines = out.splitlines()
    # print(mf.metrics["rmse"], mf.metrics["mae"])
    rmse, mae = map(float, lines[0].split())
    assert 0.8 < rmse < 1.0 and 0.6 < mae < 0.85, lines[0]
    # print(tt.metrics["full"]["ndcg@10"], tt.metrics["sampled_100"]["hr@10"]) follows the top-by-bias table
    pair = [ln for ln in lines[1:] if re.fullmatch(r"\d\.\d+(e-\d+)? \d\.\d+(e-\d+)?", ln.strip())]
    assert pair, out
    ndcg, hr = map(float, pair[0].split())
    assert 0 < ndcg < 1 and 0 < hr <= 1
    # top_items_by_bias(n=5), recommend(["1"], k=5), similar_items(["50"], k=5): DataFrames
    assert "user_id" in out and "rank" in out and "score" in out, out
    rec_rows = re.findall(r"^\d+\s+1\s+\d+\s+-?[\d.]+\s+[1-5]$", out, flags=re.M)
    assert len(rec_rows) == 5, f"recommend(['1'], k=5) should print 5 rows:\n{out}"
    assert "export/two_tower/1" in out and "export/two_tower_bruteforce/1" in out, lines[-1]
    for p in ("export/two_tower/1", "export/two_tower_bruteforce/1"):
        assert (ws.cwd / p / "saved_model.pb").is_file()
    assert (ws.cwd / "runs" / "two_tower" / "metrics.json").is_file()


@pytest.mark.slow
def test_load_export_in_plain_tensorflow(snippets):
    out = snippets["load_export"].result(timeout=RESULT_TIMEOUT)
    print(out)
    assert "PLAIN_TF_OK" in out
    first = out.splitlines()[0]
    assert first.count("b'") == 10, f"expected 10 item ids for user 1: {first}"


@pytest.mark.slow
def test_cli_quickstart(snippets):
    done = snippets["cli_quickstart"].result(timeout=RESULT_TIMEOUT)
    for cmd, out in done:
        print(f"$ {cmd}\n{out[-1500:]}")
    ran = [cmd for cmd, _ in done]
    assert ran == find_block("tfrec data describe").commands  # every line ran and passed its output check
    assert any(cmd.startswith("tfrec recommend") for cmd in ran)


@pytest.mark.slow
def test_local_server_block(snippets):
    ws = snippets["cli"]
    done, docker_curls = snippets["local_server"].result(timeout=RESULT_TIMEOUT)
    for cmd, out in done:
        print(f"$ {cmd}\n{out[-800:]}")
    assert [c for c, _ in done] == find_block("tfrec serve --model_config_file").commands + docker_curls
    # the Docker config serves models the CLI quickstart exported
    docker_models = re.findall(r'base_path:\s*"/models/([^"]+)"',
                               (REPO / "serving_configs" / "models.docker.config").read_text())
    assert docker_models
    for name in docker_models:
        assert any((ws.cwd / "export" / name).glob("*/saved_model.pb")), f"the CLI quickstart does not export {name}"


def readme_signature_table() -> dict:
    """{("retrieval" | "rating"): {signature: (inputs, outputs)}} from README's Signatures table."""
    text = README.read_text()
    lines = text[text.index("### Signatures"):].splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    end = next(i for i in range(first, len(lines)) if not lines[i].startswith("|"))
    rows = lines[first + 2:end]  # without the header and the rule
    table: dict = {"retrieval": {}, "rating": {}, "dtypes": {}}
    for row in rows:
        kind, sigs, inputs, outputs = [c.strip() for c in row.strip("|").split("|")]
        ticks = lambda cell: re.findall(r"`([^`]+)`", cell)  # noqa: E731
        sig_names, out_names = ticks(sigs), ticks(outputs)
        if len(sig_names) > 1:  # `user_embedding` / `item_embedding` | `user_id` / `item_id`
            for sig, inp in zip(sig_names, ticks(inputs)):
                table[kind.split()[0]][sig] = ({inp}, set(out_names))
        else:
            table[kind.split()[0]][sig_names[0]] = (set(ticks(inputs)), set(out_names))
        for sig in sig_names:  # "`k` int32", "`scores` float32 [B,10]": the dtypes stated next to a name
            for cell, where in ((inputs, "inputs"), (outputs, "outputs")):
                for tensor, dtype in re.findall(r"`(\w+)` (string|int32|int64|float32)\b", cell):
                    table["dtypes"][(kind.split()[0], sig, where, tensor)] = dtype
    return table


@pytest.mark.slow
def test_signatures_table_and_assets_match_the_exports(snippets):
    """README's Signatures table and assets.extra claims, against the CLI quickstart's exports."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    DTYPES = {"string": "DT_STRING", "int32": "DT_INT32", "int64": "DT_INT64", "float32": "DT_FLOAT"}

    ws = snippets["cli"]
    snippets["cli_quickstart"].result(timeout=RESULT_TIMEOUT)
    table = readme_signature_table()
    assert len(table["retrieval"]) == 6 and table["rating"] and len(table["dtypes"]) >= 8, table
    for name, kind in (("two_tower", "retrieval"), ("two_tower_bruteforce", "retrieval"), ("mf", "rating")):
        version = ws.cwd / "export" / name / "1"
        sm = saved_model_pb2.SavedModel()
        sm.ParseFromString((version / "saved_model.pb").read_bytes())
        sigs = sm.meta_graphs[0].signature_def
        for sig, (inputs, outputs) in table[kind].items():
            assert sig in sigs, f"{name}: README lists signature {sig!r}; the export has {sorted(sigs)}"
            assert set(sigs[sig].inputs) == inputs, (name, sig, sorted(sigs[sig].inputs))
            assert set(sigs[sig].outputs) == outputs, (name, sig, sorted(sigs[sig].outputs))
        for (kind_, sig, where, tensor), dtype in table["dtypes"].items():
            if kind_ == kind and sig in sigs and tensor in getattr(sigs[sig], where):
                actual = types_pb2.DataType.Name(getattr(sigs[sig], where)[tensor].dtype)
                assert actual == DTYPES[dtype], f"{name} {sig} {where} {tensor}: README {dtype}, export {actual}"
        for asset in ("model_card.json", "tf_serving_warmup_requests"):
            assert (version / "assets.extra" / asset).is_file(), f"{name}/1 has no assets.extra/{asset}"
    card = json.loads((ws.cwd / "export" / "two_tower" / "1" / "assets.extra" / "model_card.json").read_text())
    keys = re.findall(r'"(\w+)":', json.dumps(card))
    assert any("recall" in k and "brute" in k for k in keys), "README: the card records ScaNN recall@10 vs brute force"


# ------------------------------------------------------------------------------------------------ allowlisted
def _flags_exist(script: Path, args: list[str]) -> None:
    source = script.read_text()
    for arg in args:
        if arg.startswith("--"):
            flag = arg.split("=")[0]
            assert f'"{flag}"' in source, f"{script.name} has no flag {flag}"


def _check_make(block: Block) -> None:
    assert sorted(c.split("#")[0].strip() for c in block.commands) == ["make demo", "make test"]
    dry = subprocess.run(["make", "-n", "demo", "test"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "tfrec demo" in dry.stdout and "pytest" in dry.stdout, dry.stdout


def _check_docker(block: Block) -> None:
    compose = REPO / "serving_configs" / "docker-compose.yml"
    for cmd in block.commands:
        if cmd.startswith("docker compose"):
            assert (REPO / shlex.split(cmd)[shlex.split(cmd).index("-f") + 1]) == compose
    text = compose.read_text()
    for name in re.findall(r"/configs/([\w.]+\.config)", text):
        assert (REPO / "serving_configs" / name).is_file(), name
    assert "../export:/models" in text


def _check_benchmarks(block: Block) -> None:
    from tfrec.commands import build_parser

    for cmd in block.commands:
        argv = shlex.split(cmd, comments=True)
        if argv[0] == "python":
            script = REPO / argv[1]
            assert script.is_file() and argv[1].startswith("benchmarks/"), cmd
            _flags_exist(script, argv[2:])
        elif argv[0] == "tfrec":
            build_parser().parse_args(argv[1:])  # raises SystemExit(2) on a wrong flag
        else:
            raise AssertionError(f"{block}: unexpected command {cmd!r}")


def _check_bench_cli(block: Block) -> None:
    from tfrec.commands import build_parser

    for cmd in block.commands:
        argv = shlex.split(cmd, comments=True)
        assert argv[:2] == ["tfrec", "bench"], cmd
        args, rest = build_parser().parse_known_args(argv[1:])
        _flags_exist(REPO / "benchmarks" / f"{args.name}.py", rest)


def _check_layout(block: Block) -> None:
    top, package = [], []
    for line in block.text.splitlines():
        if re.match(r"^\S+/(\s|$)", line):
            top.append(line.split()[0])
        elif line.startswith("  ") and not line.startswith("   "):
            names = re.split(r"\s{2,}", line.strip())[0]  # "cli.py, commands.py   the `tfrec` command"
            package += [n.strip() for n in names.split(",")]
    assert top[0] == "tfrec/" and len(top) >= 5 and len(package) >= 8, (top, package)
    for name in top:
        assert (REPO / name).is_dir(), f"README layout lists {name}, which does not exist"
    for name in package:
        assert (REPO / "tfrec" / name).exists(), f"README layout lists tfrec/{name}, which does not exist"


def _check_distributed(block: Block) -> None:
    from tfrec.commands import build_parser
    from tfrec.training.distribute import read_tf_config

    env: dict = {}
    ran = 0
    for cmd in block.commands:
        argv = shlex.split(cmd, comments=True)
        if argv and argv[0] == "export":
            argv = argv[1:]
        while argv and re.match(r"^[A-Z_]+=", argv[0]):
            name, value = argv.pop(0).split("=", 1)
            env[name] = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], value)
            if name == "TF_CONFIG":
                read_tf_config({"TF_CONFIG": env[name]})  # raises ConfigError naming what is wrong
        if argv:
            assert argv[0] == "tfrec", f"{block}: unexpected command {cmd!r}"
            build_parser().parse_args(argv[1:])  # raises SystemExit(2) on a wrong flag
            ran += 1
    assert ran >= 2 and "TF_CONFIG" in env, block


def _check_schema_example(block: Block) -> None:
    from tfrec.data import Schema

    schema = Schema.from_dict(json.loads(block.text))
    shop = schema.to_dict()
    assert shop["interactions"]["path"] == "events.csv" and schema.items.path == "products.csv"
    assert schema.user_features == {"country": "categorical", "age": "numeric"}


ALLOWLIST_CHECKS = {
    "{": _check_schema_example,
    "make demo": _check_make,
    "docker compose -f serving_configs/docker-compose.yml up": _check_docker,
    "python benchmarks/ranking.py": _check_benchmarks,
    "python benchmarks/ann.py": _check_benchmarks,
    "python benchmarks/serving.py": _check_benchmarks,
    "python benchmarks/data_pipeline.py": _check_benchmarks,
    "tfrec bench ranking": _check_bench_cli,
    "# Ranking on other data": _check_benchmarks,
    "tfrec tune": _check_benchmarks,
    "python benchmarks/train_throughput.py": _check_benchmarks,
    "# Two-tower optimizers at ML-1M's": _check_benchmarks,
    "# Rating models' optimizers at ML-1M's": _check_benchmarks,
    "tfrec/": _check_layout,
    "tfrec data synthesize --layout ml-32m": _check_benchmarks,
    "python benchmarks/scale.py": _check_benchmarks,
    "export TF_CONFIG=": _check_distributed,
    "CLUSTER=": _check_distributed,
}


@pytest.mark.parametrize("prefix", list(ALLOWLIST), ids=lambda p: p.split()[0] + "-" + p.split()[-1][:24])
def test_allowlisted_block(prefix):
    assert ALLOWLIST[prefix].strip(), "an allowlist entry needs a reason"
    ALLOWLIST_CHECKS[prefix](find_block(prefix))


@pytest.mark.slow
def test_own_data_block(ml100k_dir, tmp_path):
    """The "Your own data" block: write the made-up shop, infer a schema, describe, train the two-tower
    and popularity on it, export, prepare it out of core and train the two-tower on the shards (the
    two-tower gets the documented ``--epochs 1``)."""
    ws = make_workspace(tmp_path, "repo", ml100k_dir)
    done = run_shell_block(ws, find_block('python -c "from tfrec.data.examples import'), port=str(_free_port()))
    assert [c for c, _ in done] == find_block('python -c "from tfrec.data.examples import').commands
