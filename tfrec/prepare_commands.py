"""`tfrec data prepare` and `tfrec data synthesize`: the out-of-core data subcommands.

Thin over :func:`tfrec.data.prepare.prepare_dataset` and
:func:`tfrec.data.synthesize.write_synthetic_dataset`; registered under ``tfrec data`` by
:mod:`tfrec.commands` (which also owns the exit codes: 2 bad flags, 3 bad data).
"""

from __future__ import annotations

import argparse
import json
import sys


def _positive_int(value: str) -> int:
    try:
        v = int(value.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return v


def _cmd_prepare(args) -> int:
    from tfrec.data.prepare import prepare_dataset

    # --history-length unset: prepare_dataset's default (one constant, not repeated here: reading it
    # would import pandas on every `tfrec` start).
    history = {} if args.history_length is None else {"history_length": args.history_length}
    meta = prepare_dataset(args.dataset, args.out, data_dir=args.data_dir, split=args.split,
                           test_fraction=args.test_fraction, seed=args.seed, num_shards=args.num_shards,
                           chunk_rows=args.chunk_rows, overwrite=args.overwrite, progress=not args.json, **history)
    if args.json:
        print(json.dumps(meta, indent=2, sort_keys=True))
    else:
        c = meta["counts"]
        print(f"prepared {args.out}: {c['train']:,} training examples in {len(meta['shards'])} shards, "
              f"{c['test']:,} test ratings ({meta['split']} split); {c['train_users']:,} users x "
              f"{c['train_items']:,} items in the vocabularies; {meta['seconds']['total']:.1f} s")
    return 0


def _cmd_synthesize(args) -> int:
    from tfrec.data.synthesize import write_synthetic_dataset

    summary = write_synthetic_dataset(args.out, layout=args.layout, n_ratings=args.n_ratings, n_users=args.n_users,
                                      n_items=args.n_items, seed=args.seed, overwrite=args.overwrite,
                                      progress=not args.json)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(f"wrote {args.out}: {summary['n_ratings']:,} synthetic ratings, {summary['n_users']:,} users, "
              f"{summary['n_items']:,} items ({args.layout} layout: ratings.csv, movies.csv)", file=sys.stdout)
    return 0


def add_data_commands(data_sub, add_dataset_args, add_split_args) -> None:
    """Register ``prepare`` and ``synthesize`` under the ``tfrec data`` subparsers."""
    from tfrec.data.ratings_stream import DEFAULT_CHUNK_ROWS
    from tfrec.data.synthesize import LAYOUTS

    p = data_sub.add_parser("prepare", help="stream a dataset's ratings (a MovieLens layout, or a folder with "
                                            "schema.json: your own CSV/Parquet data) into sharded TFRecords "
                                            "(+ prepared.json) for `tfrec train MODEL --prepared DIR`")
    add_dataset_args(p, default="ml-32m", synthetic=False)
    add_split_args(p, default="leave_last_out")
    p.add_argument("--out", required=True, help="the PREPARED folder to write (temp folder renamed into place)")
    p.add_argument("--history-length", type=int, default=None,
                   help="per-example two-tower history items written to the shards (0: none; default: "
                        "tfrec.data.prepared.DEFAULT_HISTORY_LENGTH, the TwoTower default)")
    p.add_argument("--num-shards", type=_positive_int, default=None,
                   help="training TFRecord files (default: one per ~1M examples, at least 2)")
    p.add_argument("--chunk-rows", type=_positive_int, default=DEFAULT_CHUNK_ROWS,
                   help="ratings read and examples encoded per chunk (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PREPARED folder")
    p.add_argument("--json", action="store_true", help="print prepared.json")
    p.set_defaults(func=_cmd_prepare)

    p = data_sub.add_parser("synthesize", help="write a synthetic dataset in a MovieLens CSV layout, in bounded memory")
    p.add_argument("--layout", default="ml-32m", choices=tuple(LAYOUTS),
                   help="file layout and default sizes (ml-32m: 32,000,000 ratings, 200,948 users, 87,585 items)")
    p.add_argument("--out", required=True, help="the dataset folder to write (ratings.csv, movies.csv)")
    p.add_argument("--n-ratings", type=_positive_int, default=None,
                   help="ratings (alone: users and items scale with its square root)")
    p.add_argument("--n-users", type=_positive_int, default=None)
    p.add_argument("--n-items", type=_positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.add_argument("--json", action="store_true", help="print the summary (synthetic.json)")
    p.set_defaults(func=_cmd_synthesize)
