"""Ranking benchmark on MovieLens 100K: every ranking model under full ranking and sampled-100,
plus cold-start slices, printed as one markdown table with the targets checked in the same run.

    python benchmarks/ranking.py [--data-dir ../shared/data] [--models two_tower,item_knn,...] [--seeds 0,1,2]

Protocols (tfrec.evaluation.protocols): leave-last-out split (each user's latest rating is test);
full ranking over all items with the user's training items excluded; sampled-100 (the test item
against 100 seeded unseen items, the NCF protocol). Cold start: users with <= 5 training
interactions (their ratings split by time: the first up to 5 in train -- simulated by truncating
those users' histories), and wholly new users (a seeded 10% of users held out entirely; models are
refitted without them; TwoTower serves them from demographics, the others fall back to popularity).

Seeds: every model is fitted once per seed in ``--seeds`` (default 0,1,2); the table's
``ndcg@10_mean``/``ndcg@10_sd`` columns are the full-ranking NDCG@10 over those fits (deterministic
models are fitted once: their sd is 0), the other columns come from the first seed, and the targets
compare seed means.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pandas as pd

from tfrec.data import cold_start_user_split, leave_last_out_split, load_movielens
from tfrec.evaluation import full_ranking, sampled_ranking
from tfrec.models.registry import create_model

ALL = ["popularity", "item_knn", "item_knn_all_history", "item_knn_recency", "user_knn", "content_tfidf",
       "covisitation", "ease", "ease_recency", "als", "mf", "neumf", "two_tower_id", "two_tower_single",
       "two_tower_attention", "two_tower_gru", "two_tower"]
# Benchmark rows that are a registry model with other settings: the textbook item-kNN (cosine over
# the whole user-item matrix, every item of the user's history) beside tfrec's default, which scores
# from the 5 most recent items.
# ``two_tower_single`` is one query/candidate tower pair instead of the default ensemble of three;
# ``two_tower_attention``/``two_tower_gru`` encode the query history with causal self-attention / a GRU
# instead of the default learned-recency mean.
# ``ease_recency``/``item_knn_recency`` score from a recency-weighted user row over the whole history
# (0.8**position from the newest item).
VARIANTS = {"item_knn_all_history": ("item_knn", {"history": None}),
            "item_knn_recency": ("item_knn", {"history": None, "recency_decay": 0.8}),
            "ease_recency": ("ease", {"recency_decay": 0.8}),
            "two_tower_single": ("two_tower", {"ensemble_size": 1}),
            "two_tower_attention": ("two_tower", {"history_encoder": "attention"}),
            "two_tower_gru": ("two_tower", {"history_encoder": "gru"})}


KERAS = ("mf", "neumf", "two_tower", "two_tower_id", "two_tower_single", "two_tower_attention", "two_tower_gru")
SEEDED = ("als",) + KERAS  # fits that depend on a seed


def _fit(name, train, data, seed=0):
    base, hyperparameters = VARIANTS.get(name, (name, {}))
    if name in SEEDED:
        hyperparameters = {**hyperparameters, "seed": seed}
    model = create_model(base, **hyperparameters)
    t0 = time.perf_counter()
    kwargs = {"verbose": 0} if name in KERAS else {}
    model.fit(train, items=data.items, users=data.users, **kwargs)
    return model, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("TFREC_DATA_DIR") or
                   str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    p.add_argument("--models", default=",".join(ALL))
    p.add_argument("--no-cold-start", action="store_true")
    p.add_argument("--seeds", default="0,1,2", help="seeds the seeded models are fitted with (default %(default)s); "
                   "the table reports the mean and sd of full NDCG@10 over them and a per-seed table")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        p.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if not seeds:
        p.error("--seeds: give at least one seed")
    data = load_movielens("ml-100k", data_dir=args.data_dir)
    train, test = leave_last_out_split(data.ratings)
    # Sparse-user slice: users whose history is truncated to their first <= 5 training ratings.
    rng = np.random.default_rng(0)
    sparse_users = set(rng.choice(sorted(train.user_id.unique()), size=100, replace=False))
    sparse_train = pd.concat([
        train[~train.user_id.isin(sparse_users)],
        train[train.user_id.isin(sparse_users)].sort_values("timestamp").groupby("user_id").head(5),
    ]).reset_index(drop=True)
    cold_train, cold_test = cold_start_user_split(data.ratings, test_fraction=0.1, seed=0)
    cold_test = cold_test.sort_values("timestamp").groupby("user_id").tail(1)

    rows, per_seed = [], {}
    for name in names:
        print(f"[ranking] {name} ...", file=sys.stderr, flush=True)
        model, fit_s = _fit(name, train, data, seed=seeds[0])
        full = full_ranking(model, train, test)
        s100 = sampled_ranking(model, train, test, n_negatives=100, seed=0)
        ndcg = [full["ndcg@10"]]
        # Each result as soon as it exists: a long run cut short still reports what it measured.
        print(f"[ranking] {name}: seed {seeds[0]} full NDCG@10 {ndcg[0]:.4f} (fit {fit_s:.0f} s)",
              file=sys.stderr, flush=True)
        if name in SEEDED:
            for s in seeds[1:]:
                print(f"[ranking] {name}: seed {s} ...", file=sys.stderr, flush=True)
                ndcg.append(full_ranking(_fit(name, train, data, seed=s)[0], train, test)["ndcg@10"])
                print(f"[ranking] {name}: seed {s} full NDCG@10 {ndcg[-1]:.4f}", file=sys.stderr, flush=True)
            per_seed[name] = ndcg
        row = {"model": name, "fit_s": fit_s, "seeds": float(len(ndcg)), "ndcg@10_mean": float(np.mean(ndcg)),
               "ndcg@10_sd": float(np.std(ndcg)), "full_hr@10": full["hr@10"], "full_ndcg@10": full["ndcg@10"],
               "full_map@10": full["map@10"], "full_recall@10": full["recall@10"], "full_mrr": full["mrr"],
               "coverage": full["coverage"], "s100_hr@10": s100["hr@10"], "s100_ndcg@10": s100["ndcg@10"]}
        if not args.no_cold_start:
            sparse_model, _ = _fit(name, sparse_train, data, seed=seeds[0])
            row["sparse<=5_ndcg@10"] = full_ranking(sparse_model, sparse_train, test, users=sparse_users)["ndcg@10"]
            cold_model, _ = _fit(name, cold_train, data, seed=seeds[0])
            row["new_users_ndcg@10"] = full_ranking(cold_model, cold_train, cold_test)["ndcg@10"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    print("\n## Ranking on MovieLens 100K (leave-last-out; full ranking excludes training items)\n")
    print(_markdown(table))
    by = table.to_dict("index")
    checks = []
    mean = {name: row["ndcg@10_mean"] for name, row in by.items()}
    if "two_tower" in by and "item_knn" in by:
        ratio = mean["two_tower"] / max(mean["item_knn"], 1e-12)
        checks.append(("TwoTower full NDCG@10 >= 1.5x ItemKNN (seed means)", f"{ratio:.2f}x", ratio >= 1.5))
    eases = [n for n in ("ease", "ease_recency") if n in by]
    if "two_tower" in by and eases:
        best_ease = max(eases, key=mean.get)
        ratio = mean["two_tower"] / max(mean[best_ease], 1e-12)
        checks.append((f"TwoTower full NDCG@10 >= 1.2x the best EASE ({best_ease}, seed means)", f"{ratio:.2f}x",
                       ratio >= 1.2))
    if "two_tower" in by and "item_knn_all_history" in by:
        ratio = mean["two_tower"] / max(mean["item_knn_all_history"], 1e-12)
        checks.append(("(for reference) TwoTower vs ItemKNN over the whole history", f"{ratio:.2f}x", ratio >= 1.5))
    if "two_tower" in by and "two_tower_id" in by:
        checks.append(("TwoTower full NDCG@10 > id-only TwoTower (seed means)",
                       f"{mean['two_tower']:.4f} vs {mean['two_tower_id']:.4f}",
                       mean["two_tower"] > mean["two_tower_id"]))
    best = table["s100_hr@10"].idxmax()
    checks.append(("best sampled-100 HR@10 >= 0.65", f"{best}: {table.loc[best, 's100_hr@10']:.4f}",
                   table.loc[best, "s100_hr@10"] >= 0.65))
    if not args.no_cold_start and "two_tower" in by and "popularity" in by:
        checks.append(("new users: TwoTower feature path > Popularity",
                       f"{by['two_tower']['new_users_ndcg@10']:.4f} vs {by['popularity']['new_users_ndcg@10']:.4f}",
                       by["two_tower"]["new_users_ndcg@10"] > by["popularity"]["new_users_ndcg@10"]))
    print("\n| target | measured | met |\n|---|---|---|")
    for target, measured, ok in checks:
        print(f"| {target} | {measured} | {'yes' if ok else 'NO'} |")
    if per_seed and len(seeds) > 1:
        print("\n| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |")
        print("|---|" + "---:|" * (len(seeds) + 2))
        for name, ndcg in per_seed.items():
            print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in ndcg) + f" | {np.mean(ndcg):.4f} | {np.std(ndcg):.4f} |")
    return 0


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.iterrows():
        cells = [f"{row[c]:.1f}" if c == "fit_s" else f"{row[c]:.0f}" if c == "seeds" else f"{row[c]:.4f}"
                 for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
