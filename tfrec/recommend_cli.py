"""`tfrec recommend`: ask a running server (REST or gRPC) for a user's recommendations, with titles.

A client command of the CLI layer: it reads MovieLens titles with :mod:`tfrec.data`, which the
serving package (SavedModels only) does not import.
"""

from __future__ import annotations

import argparse

def add_recommend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None,
                   help="server address (default: http://127.0.0.1:8501 for REST, 127.0.0.1:8500 for gRPC)")
    p.add_argument("--protocol", choices=["rest", "grpc"], default="rest",
                   help="TF Serving's REST API or its gRPC PredictionService (default: %(default)s)")
    p.add_argument("--model", default="two_tower", help="model name on the server (default: %(default)s)")
    p.add_argument("--user", required=True, help="raw MovieLens user id, e.g. 1")
    p.add_argument("--k", type=int, default=10, help="number of items (default: %(default)s)")
    p.add_argument("--dataset", default="ml-100k", help="dataset for titles (default: %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset (for titles)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run_recommend(args) -> int:
    import json

    from tfrec.serving.client import Client

    url = args.url or ("127.0.0.1:8500" if args.protocol == "grpc" else "http://127.0.0.1:8501")
    client = Client(url, model=args.model, protocol=args.protocol)
    recs = client.recommend(args.user, k=args.k)
    titles = {}
    try:
        from tfrec.data import load_movielens

        items = load_movielens(args.dataset, data_dir=args.data_dir, download=False).items
        titles = dict(zip(items["item_id"], items["title"]))
    except Exception:  # titles are a nicety; ids are the answer
        pass
    if args.json:
        print(json.dumps([{"item_id": i, "score": s, "title": titles.get(i)} for i, s in recs], indent=2))
    else:
        for rank, (item, score) in enumerate(recs, start=1):
            print(f"{rank:>3}. {titles.get(item, item)}  (item {item}, score {score:.4f})")
    return 0
