"""Do tfrec's defaults hold on data of other shapes? The default TwoTower against EASE (with and
without recency-weighted user rows) and ItemKNN on synthetic MovieLens-like data.

    python benchmarks/generalization.py [--shapes long_histories,large_catalog] [--models ...] [--seed 0]

SYNTHETIC DATA (tfrec.data.synthetic_movielens): a latent-factor generator whose users rate items in
random order within their time line, so it has collaborative and demographic/genre signal but no
sequential signal -- recency weighting has nothing to find there. It checks that the defaults
(chosen on ML-100K) do not fall apart on longer histories or a larger catalog; it is not a
substitute for another real dataset. Split: leave-last-out, full ranking (training items excluded).
"""

from __future__ import annotations

import argparse
import sys
import time

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)

from tfrec.data import leave_last_out_split, synthetic_movielens
from tfrec.evaluation import full_ranking
from tfrec.models.registry import create_model

# name -> synthetic_movielens sizes (ML-100K: 943 users, 1,682 items, 100,000 ratings, 106 per user).
SHAPES = {
    "long_histories": {"n_users": 300, "n_items": 1500, "n_ratings": 90_000},   # 300 ratings per user
    "large_catalog": {"n_users": 2000, "n_items": 5000, "n_ratings": 80_000},   # 3x ML-100K's catalog
}
MODELS = {
    "item_knn": ("item_knn", {}),
    "ease": ("ease", {}),
    "ease_recency": ("ease", {"recency_decay": 0.8}),
    "two_tower": ("two_tower", {}),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seed", type=int, default=0, help="data and model seed")
    args = p.parse_args(argv)
    shapes = [s for s in args.shapes.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    for name in shapes + models:
        if name not in SHAPES and name not in MODELS:
            p.error(f"unknown shape or model {name!r}; shapes: {', '.join(SHAPES)}; models: {', '.join(MODELS)}")
    print("| data (synthetic) | users | items | ratings | " + " | ".join(f"{m} NDCG@10" for m in models)
          + " | two_tower / best EASE |")
    print("|---|---:|---:|---:|" + "---:|" * (len(models) + 1))
    for shape in shapes:
        data = synthetic_movielens(**SHAPES[shape], seed=args.seed)
        train, test = leave_last_out_split(data.ratings)
        ndcg = {}
        for m in models:
            base, hp = MODELS[m]
            if base == "two_tower":
                hp = {**hp, "seed": args.seed}
            print(f"[generalization] {shape}: {m} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            model = create_model(base, **hp)
            model.fit(train, items=data.items, users=data.users, **({"verbose": 0} if base == "two_tower" else {}))
            ndcg[m] = full_ranking(model, train, test)["ndcg@10"]
            print(f"[generalization] {shape}: {m} NDCG@10 {ndcg[m]:.4f} (fit {time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
        eases = [ndcg[m] for m in ("ease", "ease_recency") if m in ndcg]
        ratio = f"{ndcg['two_tower'] / max(max(eases), 1e-12):.2f}x" if "two_tower" in ndcg and eases else "-"
        sizes = SHAPES[shape]
        print(f"| {shape} | {sizes['n_users']:,} | {sizes['n_items']:,} | {sizes['n_ratings']:,} | "
              + " | ".join(f"{ndcg[m]:.4f}" for m in models) + f" | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
