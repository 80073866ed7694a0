"""`tfrec serve`: tensorflow_model_server's flags, REST and gRPC on the same loaded models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfrec.errors import ConfigError


def _bool(value: str) -> bool:
    v = str(value).lower()
    if v in ("1", "true", "yes"):
        return True
    if v in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _count(minimum: int):
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = None
        if n is None or n < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}")
        return n

    return parse


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``tensorflow_model_server`` (gRPC on --port, REST on --rest_api_port)."""
    p.add_argument("--port", type=int, default=None,
                   help="gRPC port (PredictionService, ModelService; default: 8500, skipped with a warning when "
                        "that port is taken; 0: no gRPC port)")
    p.add_argument("--grpc_socket_path", default=None,
                   help="also serve gRPC on this Unix domain socket")
    p.add_argument("--grpc_channel_arguments", default="",
                   help="comma-separated gRPC server arguments, e.g. grpc.max_connection_age_ms=2000")
    p.add_argument("--grpc_max_threads", type=_count(1), default=8,
                   help="threads answering gRPC calls (default: %(default)s)")
    p.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default: %(default)s; 0: no REST)")
    p.add_argument("--rest_api_host", default="127.0.0.1",
                   help="address the REST and gRPC ports bind (default: %(default)s; TF Serving binds 0.0.0.0)")
    p.add_argument("--model_name", default=None, help="serve one model under this name (with --model_base_path)")
    p.add_argument("--model_base_path", default=None, help="folder holding the model's integer version folders")
    p.add_argument("--model_config_file", default=None, help="a ModelServerConfig text proto (models.config)")
    p.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False,
                   help="merge concurrent predict requests into batches")
    p.add_argument("--batching_parameters_file", default=None, help="BatchingParameters text proto")
    p.add_argument("--monitoring_config_file", default=None, help="MonitoringConfig text proto (Prometheus)")
    p.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                   help="seconds between scans of the base paths for new versions (0: scan once)")
    p.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0,
                   help="accepted for compatibility; the config file is read once")
    p.add_argument("--rest_api_num_threads", type=_count(1), default=2,
                   help="threads running unbatched predicts (default: %(default)s; the HTTP side is one "
                        "asyncio event loop)")
    p.add_argument("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
                   help="replay each version's assets.extra/tf_serving_warmup_requests before serving it, so "
                        "graph optimisation happens at load, not on the first request (default: %(default)s)")
    p.add_argument("--num_request_iterations_for_warmup", type=_count(0), default=0,
                   help="times each warm-up request is replayed (used only if > 0; otherwise 1)")
    p.add_argument("--tensorflow_intra_op_parallelism", type=_count(0), default=0,
                   help="threads inside one TensorFlow op (default: %(default)s = TensorFlow's choice)")
    p.add_argument("--tensorflow_inter_op_parallelism", type=_count(0), default=0,
                   help="TensorFlow ops run in parallel (default: %(default)s = TensorFlow's choice)")


def build_server(args):
    """(app, manager) from parsed flags."""
    from tfrec.serving.app import create_app
    from tfrec.serving.model_manager import ModelManager
    from tfrec.serving.server_config import (
        BatchingParameters,
        ModelEntry,
        load_model_config,
        parse_batching_parameters,
        parse_monitoring_config,
    )

    if args.model_config_file and (args.model_name or args.model_base_path):
        raise ConfigError("give either --model_config_file or --model_name with --model_base_path, not both")
    if args.model_config_file:
        entries = load_model_config(args.model_config_file)
    elif args.model_base_path:
        entries = [ModelEntry(name=args.model_name or "default", base_path=Path(args.model_base_path))]
    else:
        raise ConfigError("nothing to serve: give --model_config_file, or --model_name and --model_base_path")
    for e in entries:
        if not e.base_path.is_dir():
            raise ConfigError(f"model {e.name!r}: base path {e.base_path} does not exist")
    batching = None
    if args.enable_batching:
        batching = BatchingParameters()
        if args.batching_parameters_file:
            path = Path(args.batching_parameters_file)
            if not path.is_file():
                raise ConfigError(f"--batching_parameters_file: {path} does not exist")
            batching = parse_batching_parameters(path.read_text(), str(path))
    monitoring = None
    if args.monitoring_config_file:
        path = Path(args.monitoring_config_file)
        if not path.is_file():
            raise ConfigError(f"--monitoring_config_file: {path} does not exist")
        monitoring = parse_monitoring_config(path.read_text(), str(path))
    intra = getattr(args, "tensorflow_intra_op_parallelism", 0)
    inter = getattr(args, "tensorflow_inter_op_parallelism", 0)
    import functools

    from tfrec.serving.warmup import load_warmed_servable

    # Each version runs in its own session with these thread pools (TF Serving's session config),
    # and replays its warm-up requests before it is served.
    loader = functools.partial(load_warmed_servable, intra_op_threads=intra, inter_op_threads=inter,
                               warmup=getattr(args, "enable_model_warmup", True),
                               iterations=getattr(args, "num_request_iterations_for_warmup", 0) or 1)
    manager = ModelManager(entries, poll_seconds=args.file_system_poll_wait_seconds, loader=loader)
    manager.refresh()
    for e in entries:
        if not manager.versions(e.name):
            detail = "; ".join(f"{k}: {v}" for k, v in manager.errors.items() if k.startswith(e.name + "/"))
            print(f"tfrec serve: warning: no servable version of {e.name!r} under {e.base_path}"
                  + (f" ({detail})" if detail else ""), file=sys.stderr)
    app = create_app(manager, batching=batching, monitoring=monitoring,
                     predict_threads=getattr(args, "rest_api_num_threads", 2))
    return app, manager


def _pick(module: str, fallback: str) -> str:
    """uvicorn's name for an optional fast implementation when it is installed (uvloop, httptools)."""
    import importlib.util

    return module if importlib.util.find_spec(module) is not None else fallback


def _channel_arguments(text: str) -> list:
    out = []
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        out.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return out


def run_serve(args) -> int:
    import uvicorn

    import gc

    app, manager = build_server(args)
    grpc_server = None
    port = 8500 if args.port is None else args.port
    if port or args.grpc_socket_path:
        from tfrec.serving.grpc_server import create_grpc_server

        kwargs = dict(host=args.rest_api_host, socket_path=args.grpc_socket_path, max_workers=args.grpc_max_threads,
                      options=_channel_arguments(args.grpc_channel_arguments),
                      batch_submit=app.state.batch_submit if args.rest_api_port else None,
                      metrics=app.state.metrics)
        try:
            grpc_server, _ = create_grpc_server(manager, port=port or None, **kwargs)
        except (OSError, RuntimeError) as exc:
            if args.port is not None:  # asked for: a port that cannot be bound is an error
                raise ConfigError(f"--port {args.port}: {exc}") from None
            # The default port taken (e.g. another server on this machine): REST keeps working.
            print(f"tfrec serve: warning: no gRPC on {args.rest_api_host}:8500 ({exc}); pass --port to choose one",
                  file=sys.stderr)
            port = 0
            if args.grpc_socket_path:
                grpc_server, _ = create_grpc_server(manager, port=None, **kwargs)
    args.port = port
    # TensorFlow and the loaded models leave a few million long-lived Python objects; a full
    # collection walking them stalls every request in flight for tens of milliseconds. Move them out
    # of the collector's view (objects created later are collected as usual).
    gc.collect()
    gc.freeze()
    manager.start_polling()
    names = ", ".join(f"{n} (versions {sorted(manager.versions(n))})" for n in manager.entries)
    where = []
    if grpc_server is not None:
        grpc_server.start()
        if args.port:
            where.append(f"gRPC {args.rest_api_host}:{args.port}")
        if args.grpc_socket_path:
            where.append(f"gRPC unix:{args.grpc_socket_path}")
    if args.rest_api_port:
        where.append(f"http://{args.rest_api_host}:{args.rest_api_port}")
    print(f"tfrec serve: {names} on {', '.join(where)}", file=sys.stderr, flush=True)
    try:
        if args.rest_api_port:
            uvicorn.run(app, host=args.rest_api_host, port=args.rest_api_port, log_level="warning",
                        access_log=False, loop=_pick("uvloop", "auto"), http=_pick("httptools", "auto"),
                        # X-Forwarded-* rewriting changes only scope fields the handler never reads.
                        proxy_headers=False)
        elif grpc_server is not None:
            grpc_server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=2)
        manager.stop()
    return 0
