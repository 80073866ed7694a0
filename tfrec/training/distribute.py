"""Strategies for ``tfrec train --strategy`` and the ``tfrec worker`` server, from ``TF_CONFIG``.

tfrec trains on TensorFlow's own distributed engine (``tf.distribute``); this module turns a
strategy name into a strategy, reading the cluster from the standard ``TF_CONFIG`` environment
variable, and checks that cluster at the boundary so a mistake fails fast with a message naming it
instead of hanging:

* ``none``: no strategy (today's single-process training).
* ``mirrored``: ``MirroredStrategy`` over this machine's GPUs, else its logical CPU devices.
* ``multi_worker``: ``MultiWorkerMirroredStrategy``; every worker runs the same ``tfrec train``
  command with its own ``TF_CONFIG`` (``{"cluster": {"worker": [...]}, "task": {"type": "worker",
  "index": i}}``); worker 0 (or a ``chief`` task) is the chief.
* ``parameter_server``: ``ParameterServerStrategy`` driven by a ``ClusterCoordinator`` (Keras
  ``fit`` creates it); this process is the ``chief``; the ``worker`` and ``ps`` tasks are
  ``tfrec worker`` processes (:func:`serve_task`). Variables of at least
  ``2 * min_shard_bytes`` (the embedding tables) are sharded over the ps tasks.

``TF_CONFIG`` problems -- not JSON, no ``task``, a task missing from ``cluster``, a malformed
address, a peer that never answers -- raise :class:`tfrec.errors.ConfigError`. TensorFlow's own
multi-worker start-up waits for every peer without a deadline (in C++, beyond any Python timeout),
so :func:`make_strategy` first waits, at most ``connect_timeout`` seconds, until every peer's port
answers (each task answers on its own port meanwhile), and names the ones that do not.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from tfrec.errors import ConfigError

STRATEGIES = ("none", "mirrored", "multi_worker", "parameter_server")
#: seconds a distributed process waits for its peers before giving up (``--connect-timeout``).
DEFAULT_CONNECT_TIMEOUT = 120.0
#: seconds without a heartbeat before a multi_worker peer is declared dead (TensorFlow's default: 10).
DEFAULT_HEARTBEAT_TIMEOUT = 120.0
_JOBS = ("chief", "worker", "ps", "evaluator")
_MIRRORED: dict = {}  # device names -> the process's MirroredStrategy over them


@dataclass(frozen=True)
class ClusterConfig:
    """A parsed ``TF_CONFIG``: ``cluster`` (job -> ["host:port", ...]), this task's type and index."""

    cluster: dict
    task_type: str
    task_index: int

    @property
    def is_chief(self) -> bool:
        """The chief writes the run folder: the ``chief`` task, else worker 0."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def address(self) -> str:
        return self.cluster[self.task_type][self.task_index]

    def peers(self, jobs=None) -> list:
        """``[(job, index, "host:port"), ...]`` of the other tasks (of ``jobs``, default all)."""
        return [(job, i, addr) for job, addrs in self.cluster.items() if jobs is None or job in jobs
                for i, addr in enumerate(addrs) if (job, i) != (self.task_type, self.task_index)]

    def num_tasks(self, job: str) -> int:
        return len(self.cluster.get(job, []))


def _check_address(job: str, index: int, addr) -> str:
    if not isinstance(addr, str) or addr.count(":") < 1:
        raise ConfigError(f"TF_CONFIG cluster[{job!r}][{index}] must be a 'host:port' string, got {addr!r}")
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"TF_CONFIG cluster[{job!r}][{index}] must be a 'host:port' string with a port in "
                          f"1..65535, got {addr!r}")
    return addr


def read_tf_config(environ: Optional[Mapping[str, str]] = None) -> ClusterConfig:
    """Parse and check ``TF_CONFIG`` (from ``environ``, default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "")
    if not raw.strip():
        raise ConfigError("TF_CONFIG is not set: a distributed strategy needs the cluster, e.g. "
                          'TF_CONFIG=\'{"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}, '
                          '"task": {"type": "worker", "index": 0}}\'')
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}): {raw[:200]!r}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task', got {type(config).__name__}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError("TF_CONFIG has no 'cluster' (a JSON object of job name -> list of 'host:port')")
    clean = {}
    for job, addrs in cluster.items():
        if job not in _JOBS:
            raise ConfigError(f"TF_CONFIG cluster has an unknown job {job!r}; expected some of {', '.join(_JOBS)}")
        if isinstance(addrs, str) or not isinstance(addrs, list) or not addrs:
            raise ConfigError(f"TF_CONFIG cluster[{job!r}] must be a non-empty list of 'host:port', got {addrs!r}")
        clean[job] = [_check_address(job, i, a) for i, a in enumerate(addrs)]
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigError("TF_CONFIG has no 'task' with 'type' and 'index' (which task this process is), e.g. "
                          '"task": {"type": "worker", "index": 0}; got ' + repr(task))
    task_type, index = task["type"], task["index"]
    if task_type not in clean:
        raise ConfigError(f"TF_CONFIG task type {task_type!r} is not a job of the cluster ({', '.join(clean)})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(clean[task_type]):
        raise ConfigError(f"TF_CONFIG task index {index!r} is out of range: cluster[{task_type!r}] has "
                          f"{len(clean[task_type])} task(s)")
    return ClusterConfig(cluster=clean, task_type=task_type, task_index=index)


def _reachable(addr: str, timeout: float = 1.0) -> bool:
    host, _, port = addr.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def unreachable_peers(config: ClusterConfig, jobs=None) -> list:
    """The peers (``"job i at host:port"``) whose port does not accept a TCP connection now."""
    return [f"{job} {i} at {addr}" for job, i, addr in config.peers(jobs) if not _reachable(addr)]


def wait_for_peers(config: ClusterConfig, timeout: float, jobs=None) -> None:
    """Block until every peer (of ``jobs``) accepts TCP connections; ConfigError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        missing = unreachable_peers(config, jobs)
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise ConfigError(f"TF_CONFIG peer(s) unreachable after {timeout:g} s: {', '.join(missing)} "
                              "(is the process started, and the address right?)")
        time.sleep(0.5)


class _Listening:
    """A plain TCP listener on this task's own port while it waits for its peers.

    Every multi_worker task checks that its peers answer before TensorFlow starts (TensorFlow's
    start-up would wait for a missing peer forever, in C++, where no Python timeout reaches). The
    gRPC server only opens the port inside that start-up, so each task answers on its port meanwhile;
    the listener closes just before TensorFlow binds the same port.
    """

    def __init__(self, address: str):
        host, _, port = address.rpartition(":")
        self._sock = None
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), int(port)))
            sock.listen(64)
            self._sock = sock
        except OSError:  # not this machine's address as written, or already bound: peers wait for TF
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._sock is not None:
            self._sock.close()
        return False


@dataclass
class Distribution:
    """What :func:`make_strategy` returns: the strategy (None for ``none``) and the cluster."""

    name: str
    strategy: object = None
    cluster: Optional[ClusterConfig] = None

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief

    def scope(self):
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()


def _configure_coordination(config: ClusterConfig, heartbeat_timeout: float) -> None:
    """The coordination service MultiWorkerMirroredStrategy would configure, with a longer heartbeat.

    TensorFlow's default declares a worker dead after 10 s without a heartbeat, which a busy
    machine (tracing, evaluation on the chief) exceeds and which then aborts the whole job.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=config.num_tasks(job))
            for job in ("chief", "worker") if config.num_tasks(job)]
    leader = "chief" if config.num_tasks("chief") else "worker"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
        heartbeat_timeout_in_ms=int(heartbeat_timeout * 1000), coordinated_jobs=jobs)


def make_strategy(name: str = "none", *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                  environ: Optional[Mapping[str, str]] = None, min_shard_bytes: int = 32 << 10,
                  heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT) -> Distribution:
    """A :class:`Distribution` for a strategy name in :data:`STRATEGIES` (cluster from ``TF_CONFIG``).

    Args:
      name: ``none``, ``mirrored``, ``multi_worker`` or ``parameter_server``.
      connect_timeout: seconds to wait for the peers before failing (see the module docstring).
      environ: where ``TF_CONFIG`` is read (default ``os.environ``; must be the process
        environment for the strategies TensorFlow builds from it).
      heartbeat_timeout: multi_worker: seconds without a heartbeat before a worker counts as dead
        (and the job stops with an error on every worker).
      min_shard_bytes: parameter server: a variable is split over the ps tasks only when every
        shard would hold at least this many bytes (embedding tables are; small kernels are not).
    """
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; expected one of: {', '.join(STRATEGIES)}")
    if connect_timeout is None or connect_timeout <= 0:
        raise ConfigError(f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}")
    if name == "none":
        return Distribution(name)
    import tensorflow as tf

    if name == "mirrored":
        # The GPUs, else every logical CPU device (one unless the process configured several).
        devices = tuple(d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
        # One strategy per device set and process: a second MirroredStrategy on the same devices
        # restarts the collective keys, and TensorFlow then mixes up the all-reduces of two models.
        if devices not in _MIRRORED:
            _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
        return Distribution(name, _MIRRORED[devices])
    config = read_tf_config(environ)
    if name == "multi_worker":
        extra = sorted(set(config.cluster) - {"chief", "worker"})
        if extra:
            raise ConfigError(f"multi_worker: TF_CONFIG cluster may hold only 'worker' (and 'chief') jobs, got "
                              f"{', '.join(extra)} too")
        if config.task_type not in ("chief", "worker"):
            raise ConfigError(f"multi_worker: this task is {config.task_type!r}; expected a worker or the chief")
        with _Listening(config.address):
            wait_for_peers(config, connect_timeout)
        _configure_coordination(config, heartbeat_timeout)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution(name, strategy, config)
    # parameter_server
    for job in ("chief", "worker", "ps"):
        if not config.num_tasks(job):
            raise ConfigError(f"parameter_server: TF_CONFIG cluster has no {job!r} job; it needs one chief (this "
                              "process), at least one worker and one ps task")
    if config.task_type != "chief":
        raise ConfigError(f"parameter_server: `tfrec train` runs on the chief, but TF_CONFIG names this task "
                          f"{config.task_type} {config.task_index}; start worker and ps tasks with `tfrec worker`")
    wait_for_peers(config, connect_timeout, jobs=("worker", "ps"))
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")  # a lost worker fails its step, not the run
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    by_size = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=config.num_tasks("ps"))

    def partitioner(shape, dtype, axis=0):
        # String variables (side tables) stay whole: a sliced string variable cannot be restored.
        if dtype == tf.string:
            return [1] * len(shape)
        return by_size(shape, dtype, axis)

    strategy = tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
    return Distribution(name, strategy, config)


def serve_task(environ: Optional[Mapping[str, str]] = None, *, ready_message: bool = True) -> None:
    """Run this process's ``worker`` or ``ps`` task of ``TF_CONFIG`` until it is stopped.

    Starts a ``tf.distribute.Server`` (gRPC) for the task and joins it: the process serves the
    parameter-server chief's requests until it is killed (SIGTERM/SIGINT).
    """
    config = read_tf_config(environ)
    if config.task_type not in ("worker", "ps"):
        raise ConfigError(f"`tfrec worker` serves a 'worker' or 'ps' task; TF_CONFIG names this task "
                          f"{config.task_type!r} (the chief runs `tfrec train --strategy parameter_server`)")
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    import tensorflow as tf

    server = tf.distribute.Server(tf.train.ClusterSpec(config.cluster), job_name=config.task_type,
                                  task_index=config.task_index, protocol="grpc", start=True)
    if ready_message:
        print(f"tfrec worker: serving {config.task_type} {config.task_index} at {config.address}", file=sys.stderr,
              flush=True)
    server.join()


def local_copy(model, train=None, *, items=None, users=None, prepared=None):
    """An ordinary single-process copy of a Keras recommender trained under a strategy.

    The weights go through a TF checkpoint in a temporary directory (a checkpoint stores a sharded
    parameter-server variable as one full tensor), then into a model rebuilt from its config
    outside any strategy scope: plain variables, so evaluation, the run folder and the exported
    SavedModel are the same as after single-process training. The copy's state comes from the
    training frame ``train`` (with ``items``/``users``) or from the ``prepared`` folder it was
    trained on.
    """
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="tfrec-weights-")
    try:
        path = os.path.join(tmp, "weights")
        model.save_weights(path)
        copy = type(model).from_config(model.get_config())
        if prepared is not None:
            from tfrec.training.streaming import configure_from_prepared

            configure_from_prepared(copy, prepared)
            copy._build_all_variables()
            copy.load_weights(path).expect_partial()
        else:
            copy.restore(train, items=items, users=users, weights=path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for attr in ("history_", "best_epoch_", "fit_seconds_", "examples_per_second_",
                 "examples_per_second_with_startup_", "input_plan_"):
        if hasattr(model, attr):
            setattr(copy, attr, getattr(model, attr))
    return copy
