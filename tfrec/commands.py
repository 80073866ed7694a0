"""Subcommands of the `tfrec` CLI. Each is thin: parse flags, call the Python API, print.

Exit codes: 0 success; 2 bad usage or flag values (argparse and ConfigError); 3 data not found or
malformed (DatasetNotFoundError, DataError); 1 any other tfrec error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tfrec.errors import ConfigError, DataError, DatasetNotFoundError, TfrecError
from tfrec.utils.logs import configure_logging


def _positive_int(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return v


def _fraction(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value!r}")
    return v


def _hyperparameter(value: str):
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    key, raw = value.split("=", 1)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        parsed = raw
    return key.strip().replace("-", "_"), parsed


def _add_dataset_args(p: argparse.ArgumentParser, default: str = "ml-100k", synthetic: bool = True) -> None:
    # `synthetic` (generated in memory) is a dataset for the in-memory commands only; the streaming
    # `data prepare` reads files, so it points at `data synthesize` instead.
    names = "ml-100k, ml-1m, ml-latest-small, ml-latest, ml-25m, ml-32m, " + ("synthetic, " if synthetic else "")
    tail = "" if synthetic else "; for synthetic data write a folder with `tfrec data synthesize` first"
    p.add_argument("--dataset", default=default,
                   help=names + "or a folder holding schema.json and the CSV/Parquet files it names (default: "
                        "%(default)s)" + tail)
    p.add_argument("--data-dir", default=None,
                   help="folder holding <dataset>/ (or the dataset folder itself); else $TFREC_DATA_DIR, else the "
                        "download cache")


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# ------------------------------------------------------------------------------------------------ data
def _cmd_data_describe(args) -> int:
    from tfrec.data import open_dataset

    data = open_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)
    summary = data.describe()
    if args.json:
        _print_json(summary)
    else:
        from tfrec.reports.dataset_summary import format_summary

        print(format_summary(summary))
    return 0


def _cmd_data_schema(args) -> int:
    from tfrec.data import infer_schema
    from tfrec.utils.io import atomic_write_text

    schema = infer_schema(args.files, name=args.name)
    text = json.dumps(schema, indent=2) + "\n"
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}; check the column roles and feature types, then "
              f"`tfrec data describe --dataset {Path(args.output).parent}`", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_data_download(args) -> int:
    from tfrec.data import download_movielens

    path = download_movielens(args.name, cache_dir=args.cache_dir, force=args.force)
    print(path)
    return 0


def _cmd_data_split(args) -> int:
    from tfrec.data import open_dataset
    from tfrec.training import make_split
    from tfrec.utils.io import atomic_write_text

    data = open_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)
    train, val, test = make_split(data.ratings, args.split, test_fraction=args.test_fraction, seed=args.seed)
    out = Path(args.output)
    parts = {"train": train, "test": test}
    if val is not None:
        parts["validation"] = val
    counts = {}
    for name, frame in parts.items():
        atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
        counts[name] = int(len(frame))
    if args.json:
        _print_json({"output": str(out), **counts})
    else:
        print(f"wrote {', '.join(f'{k}.csv ({v:,} ratings)' for k, v in counts.items())} to {out}")
    return 0


# ------------------------------------------------------------------------------------------------ train
def _cmd_train(args) -> int:
    import time

    import tfrec
    from tfrec.models import registry

    registry.get_model_class(args.model)  # unknown model: fail before loading anything
    hp = {}
    if args.config:  # a `tfrec tune` result; --set and the flags below override it
        from tfrec.training.tuning import load_tuned_config

        hp.update(load_tuned_config(args.config, args.model))
    hp.update(dict(args.set or []))
    for key in ("epochs", "batch_size", "pipeline", "embedding_dim", "learning_rate"):
        value = getattr(args, key, None)
        if value is not None:
            hp[key] = value
    output = args.output or f"runs/{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = tfrec.train(
        args.model,
        args.dataset,
        data_dir=args.data_dir,
        split=args.split,
        test_fraction=args.test_fraction,
        seed=args.seed,
        output=output,
        tensorboard=not args.no_tensorboard,
        verbose=0 if args.json else 1,
        prepared=args.prepared,
        steps_per_epoch=args.steps_per_epoch,
        eval_users=args.eval_users,
        plots=not args.no_plots,
        strategy=args.strategy,
        backup_dir=args.backup_dir,
        connect_timeout=args.connect_timeout,
        **hp,
    )
    if result.run_dir is None:  # a multi_worker worker other than the chief
        print("trained as a non-chief worker: the chief evaluates and writes the run folder", file=sys.stderr)
        return 0
    if args.json:
        _print_json(result.metrics)
    else:
        from tfrec.training.compare import flatten_metrics

        print(f"run folder: {result.run_dir}")
        for key, value in flatten_metrics(result.metrics).items():
            print(f"  {key:<24} {value:.4f}" if isinstance(value, float) else f"  {key:<24} {value}")
    return 0


# ------------------------------------------------------------------------------------------------ worker
def _cmd_worker(args) -> int:
    from tfrec.training.distribute import serve_task

    serve_task()
    return 0


# ------------------------------------------------------------------------------------------------ tune
def _cmd_tune(args) -> int:
    from tfrec.training.tuning import tune

    output = args.output or f"runs/{args.model}-tuned.json"
    result = tune(args.model, args.dataset, trials=args.trials, data_dir=args.data_dir, split=args.split,
                  test_fraction=args.test_fraction, seed=args.seed, metric=args.metric, fixed=dict(args.set or []),
                  timeout=args.timeout, output=output, verbose=0 if args.json else 1)
    if args.json:
        _print_json(result.config)
    else:
        v = result.config["validation"]
        print(f"validation {v['metric']}: defaults {v['default']:.4f}, best {v['best']:.4f} "
              f"({'improved' if v['improved'] else 'no trial beat the defaults; keeping them'})")
        print(f"best hyperparameters: {json.dumps(result.hyperparameters, sort_keys=True)}")
        print(f"wrote {output}  (use: tfrec train {args.model} --config {output})")
    return 0


# ------------------------------------------------------------------------------------------------ evaluate
def _cmd_evaluate(args) -> int:
    from tfrec.training.compare import evaluate

    table = evaluate(args.runs, metrics=args.metric, chart=args.chart, recompute=args.recompute)
    if args.json:
        _print_json({run: {k: v for k, v in row.items() if v == v} for run, row in table.to_dict("index").items()})
    else:
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
        if args.chart:
            print(f"chart: {args.chart}")
    return 0


# ------------------------------------------------------------------------------------------------ export
def _cmd_export(args) -> int:
    from tfrec.export import export_model

    info = export_model(args.run, name=args.name, base_dir=args.base_dir, version=args.version,
                        overwrite=args.overwrite, scann=not args.no_scann)
    if args.json:
        _print_json(info)
    else:
        for path in info.get("paths", []):
            print(f"exported {path}")
    return 0


# ------------------------------------------------------------------------------------------------ bench
BENCHMARKS = ("data_pipeline", "rating", "ranking", "ann", "serving", "scale")


def _cmd_bench(args, rest) -> int:
    import subprocess

    root = Path(__file__).resolve().parent.parent / "benchmarks"
    script = root / f"{args.name}.py"
    if not script.is_file():
        raise ConfigError(f"benchmark {args.name!r} not found at {script} (benchmarks ship with the source tree)")
    return subprocess.call([sys.executable, str(script), *rest])


# ------------------------------------------------------------------------------------------------ demo
def _cmd_demo(args) -> int:
    from tfrec.demo import run_demo

    return run_demo(data_dir=args.data_dir, dataset=args.dataset, quick=args.quick, port=args.port,
                    base_dir=args.base_dir, runs_dir=args.runs_dir)


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    from tfrec import __version__

    parser = argparse.ArgumentParser(
        prog="tfrec",
        description="Train, evaluate, export and serve Keras/TensorFlow recommenders on MovieLens-style data.",
    )
    parser.add_argument("--version", action="version", version=f"tfrec {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's, absl's and ScaNN's own log lines and warnings (as does "
                             "TFREC_VERBOSE=1); by default only tfrec's progress and results are printed")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    # data
    p_data = sub.add_parser("data", help="describe, infer a schema for, download, split, prepare or synthesize a "
                                         "dataset")
    data_sub = p_data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    p = data_sub.add_parser("describe", help="counts, rating histogram, sparsity, top genres / feature values")
    _add_dataset_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed for --dataset synthetic")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_data_describe)
    p = data_sub.add_parser("schema", help="print a starter schema.json inferred from CSV/Parquet files")
    p.add_argument("files", nargs="+", help="the interactions file and (optional) item / user tables")
    p.add_argument("--name", default=None, help="dataset name (default: the first file's folder name)")
    p.add_argument("--output", default=None, help="write it here (e.g. DIR/schema.json) instead of stdout")
    p.set_defaults(func=_cmd_data_schema)
    p = data_sub.add_parser("download", help="download a MovieLens zip into the cache ($TFREC_CACHE)")
    p.add_argument("name", help="dataset name, e.g. ml-100k")
    p.add_argument("--cache-dir", default=None, help="cache folder (default $TFREC_CACHE or ~/.cache/tfrec)")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=_cmd_data_download)
    p = data_sub.add_parser("split", help="write train/test(/validation) CSVs of a split")
    _add_dataset_args(p)
    _add_split_args(p)
    p.add_argument("--output", required=True, help="folder for train.csv, test.csv (validation.csv)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_data_split)
    from tfrec.prepare_commands import add_data_commands

    add_data_commands(data_sub, _add_dataset_args, _add_split_args)

    # train
    p = sub.add_parser("train", help="train a model and evaluate it on the test split")
    p.add_argument("model", help="mf, fm, wide_deep, neumf, two_tower, two_tower_id, popularity, item_knn, user_knn, "
                                 "content_tfidf, covisitation, ease, als")
    _add_dataset_args(p)
    _add_split_args(p)
    p.add_argument("--epochs", type=_positive_int, default=None)
    p.add_argument("--batch-size", type=_positive_int, default=None)
    p.add_argument("--embedding-dim", type=_positive_int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--pipeline", choices=("generator", "tensor"), default=None,
                   help="tf.data pipeline (default: the model's, the faster one in benchmarks/data_pipeline.py)")
    p.add_argument("--set", type=_hyperparameter, action="append", metavar="KEY=VALUE",
                   help="any other hyperparameter (JSON values), repeatable")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="JSON hyperparameters written by `tfrec tune` (--set and the flags above override them)")
    p.add_argument("--prepared", default=None, metavar="DIR",
                   help="train by streaming a folder written by `tfrec data prepare` (instead of --dataset)")
    p.add_argument("--steps-per-epoch", type=_positive_int, default=None,
                   help="with --prepared: batches per epoch (default: one pass over the shards)")
    p.add_argument("--eval-users", type=_positive_int, default=None,
                   help="with --prepared: rank a seeded sample of this many test users (default: all)")
    p.add_argument("--output", default=None, help="run folder (default runs/<model>-<time>)")
    p.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard logs")
    p.add_argument("--no-plots", action="store_true", help="skip the retrieval plots (t-SNE map, ScaNN sweep)")
    p.add_argument("--json", action="store_true", help="print the test metrics as one JSON object")
    p.add_argument("--strategy", default="none", choices=("none", "mirrored", "multi_worker", "parameter_server"),
                   help="tf.distribute strategy; the cluster comes from $TF_CONFIG (default: %(default)s)")
    p.add_argument("--backup-dir", default=None, metavar="DIR",
                   help="Keras BackupAndRestore folder: rerunning the same command resumes after the last epoch")
    p.add_argument("--connect-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="how long a distributed run waits for its TF_CONFIG peers (default: %(default)s)")
    p.set_defaults(func=_cmd_train)

    # worker
    p = sub.add_parser("worker", help="serve this process's worker/ps task of $TF_CONFIG (parameter_server training)")
    p.set_defaults(func=_cmd_worker)

    # tune
    p = sub.add_parser("tune", help="search hyperparameters with Optuna on a validation split carved from train")
    p.add_argument("model", help="ease, item_knn, user_knn, als, two_tower, two_tower_id")
    _add_dataset_args(p)
    p.add_argument("--split", default="leave_last_out", choices=("random", "temporal", "leave_last_out", "cold_start"),
                   help="the split whose training part is tuned on (its test part is never read; default %(default)s)")
    p.add_argument("--test-fraction", type=_fraction, default=0.2)
    p.add_argument("--seed", type=int, default=0, help="split and sampler seed")
    p.add_argument("--trials", type=_positive_int, default=20, help="Optuna trials (default %(default)s)")
    p.add_argument("--metric", default="ndcg@10", help="full-ranking metric to maximise (default %(default)s)")
    p.add_argument("--timeout", type=float, default=None, help="start no new trial after this many seconds")
    p.add_argument("--set", type=_hyperparameter, action="append", metavar="KEY=VALUE",
                   help="hyperparameter held fixed during the search (JSON values), repeatable")
    p.add_argument("--output", default=None, help="JSON file for the best settings (default runs/<model>-tuned.json)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_tune)

    # evaluate
    p = sub.add_parser("evaluate", help="compare run folders in one table (and one bar chart)")
    p.add_argument("runs", nargs="+", help="run folders written by `tfrec train`")
    p.add_argument("--metric", action="append", help="metric column to show (repeatable), e.g. rmse, full/ndcg@10")
    p.add_argument("--chart", default=None, help="write a bar chart PNG here")
    p.add_argument("--recompute", action="store_true", help="reload each model and evaluate again")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_evaluate)

    # export
    p = sub.add_parser("export", help="export a run as versioned SavedModels under export/<name>/<version>/")
    p.add_argument("run", help="a run folder written by `tfrec train`")
    p.add_argument("--name", required=True, help="model name (folder under --base-dir)")
    p.add_argument("--version", type=_positive_int, default=None, help="version (default: next free integer)")
    p.add_argument("--base-dir", default="export", help="default: %(default)s")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--no-scann", action="store_true", help="retrieval: only the brute-force variant")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_export)

    # serve / recommend
    p = sub.add_parser("serve", help="serve exports over TensorFlow Serving's REST and gRPC APIs "
                                     "(tensorflow_model_server flags)")
    from tfrec.recommend_cli import add_recommend_arguments, run_recommend
    from tfrec.serving.serve_cli import add_serve_arguments, run_serve

    add_serve_arguments(p)
    p.set_defaults(func=run_serve)
    p = sub.add_parser("recommend", help="ask a running server for a user's recommendations (prints titles)")
    add_recommend_arguments(p)
    p.set_defaults(func=run_recommend)

    # bench
    p = sub.add_parser("bench", help="run a benchmark script from benchmarks/ (extra args are passed on)")
    p.add_argument("name", choices=BENCHMARKS)
    p.set_defaults(func=None, bench=True)

    # demo
    p = sub.add_parser("demo", help="the end-to-end demo: train, evaluate, export, serve, recommend")
    p.add_argument("--dataset", default=None,
                   help="a MovieLens name or synthetic (default: ml-100k if it can be found or downloaded, else "
                        "synthetic data of its size, with a banner saying so); a named dataset that cannot be had "
                        "is an error")
    p.add_argument("--data-dir", default=None, help="folder holding ml-100k/ (default $TFREC_DATA_DIR, the cache or "
                                                   "a download)")
    p.add_argument("--quick", action="store_true", help="two epochs, one tower pair (used by the test suite)")
    p.add_argument("--port", type=int, default=0, help="local server port (0: a free one)")
    p.add_argument("--base-dir", default="export", help="where to export (default: %(default)s)")
    p.add_argument("--runs-dir", default="runs", help="where to write the run folders (default: %(default)s)")
    p.set_defaults(func=_cmd_demo)
    return parser


def _add_split_args(p: argparse.ArgumentParser, default: str = "random") -> None:
    p.add_argument("--split", default=default, choices=("random", "temporal", "leave_last_out", "cold_start"))
    p.add_argument("--test-fraction", type=_fraction, default=0.2)
    p.add_argument("--seed", type=int, default=0)


def run(argv) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if "--verbose" in rest and not getattr(args, "bench", False):
        # A global flag, also accepted after the subcommand (`tfrec demo --verbose`).
        rest = [a for a in rest if a != "--verbose"]
        args.verbose = True
    # Before any command imports TensorFlow; child processes (benchmarks, the demo's server)
    # inherit the setting through the environment.
    configure_logging(True if args.verbose else None)
    if getattr(args, "bench", False):
        return _cmd_bench(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"tfrec: error: {exc}", file=sys.stderr)
        return 2
    except (DatasetNotFoundError, DataError) as exc:
        print(f"tfrec: error: {exc}", file=sys.stderr)
        return 3
    except TfrecError as exc:
        print(f"tfrec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        return 130
