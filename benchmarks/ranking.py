"""Ranking benchmark on MovieLens (ML-100K by default; any MovieLens tfrec reads, or your own
schema.json folder): every ranking model under full ranking and sampled-100, plus cold-start
slices, printed as one markdown table with the targets checked in the same run.

    python benchmarks/ranking.py [--dataset ml-100k] [--data-dir ../shared/data] [--models two_tower,item_knn,...]
                                 [--seeds 0,1,2] [--no-cold-start] [--memory-gb GB]

``--dataset`` is a MovieLens name (ml-100k, ml-1m, ml-latest-small, ml-latest, ml-25m, ml-32m; found
under ``--data-dir`` as tfrec.data.load_movielens looks for it) or a folder with ``schema.json``
(README "Your own data"). The data needs timestamps (leave-last-out).

Protocols (tfrec.evaluation.protocols): leave-last-out split (each user's latest rating is test);
full ranking over all items with the user's training items excluded; sampled-100 (the test item
against 100 seeded unseen items, the NCF protocol). Cold start: users with <= 5 training
interactions (their ratings split by time: the first up to 5 in train -- simulated by truncating
those users' histories), and wholly new users (a seeded 10% of users held out entirely; models are
refitted without them; TwoTower serves them from the users table -- demographics -- and the others,
and TwoTower on data without a users table, fall back to popularity).

Seeds: every model is fitted once per seed in ``--seeds`` (default 0,1,2); the table's
``ndcg@10_mean``/``ndcg@10_sd`` columns are the full-ranking NDCG@10 over those fits (deterministic
models are fitted once: their sd is 0), the other columns come from the first seed, and the targets
compare seed means.

Rows that cannot run are skipped with the reason in the table, never a crash halfway: a model that
refuses the data (tfrec's DataError/ConfigError, e.g. MF on implicit feedback, content_tfidf without
an items table), and the item-item / user-user models whose estimated peak memory exceeds
``--memory-gb`` (default: the memory available at start) -- EASE inverts a dense items x items
matrix, so on ml-25m/ml-32m (59k-88k items, hundreds of GB) it is skipped. Any other error marks
the row failed (traceback on stderr, exit status 1) and the run goes on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pandas as pd

from tfrec.data import cold_start_user_split, leave_last_out_split, open_dataset
from tfrec.errors import ConfigError, DataError, TfrecError
from tfrec.evaluation import full_ranking, sampled_ranking
from tfrec.models.registry import create_model

ALL = ["popularity", "item_knn", "item_knn_all_history", "item_knn_recency", "user_knn", "content_tfidf",
       "covisitation", "ease", "ease_recency", "als", "mf", "neumf", "two_tower_id", "two_tower_single",
       "two_tower_mean", "two_tower_gru", "two_tower"]
# Benchmark rows that are a registry model with other settings: the textbook item-kNN (cosine over
# the whole user-item matrix, every item of the user's history) beside tfrec's default, which scores
# from the 5 most recent items.
# ``two_tower_single`` is one query/candidate tower pair instead of the default ensemble of three;
# ``two_tower_mean``/``two_tower_gru`` encode the query history with a learned-recency mean of the
# last 20 items (the default before 2026-11-30) / a GRU instead of the default causal self-attention.
# ``two_tower_mixed`` adds 1,024 uniformly sampled catalog negatives per step to the in-batch ones
# (``num_sampled_negatives``); not in the default run (``--models`` takes it, see OPTIONAL).
# ``ease_recency``/``item_knn_recency`` score from a recency-weighted user row over the whole history
# (0.8**position from the newest item).
VARIANTS = {"item_knn_all_history": ("item_knn", {"history": None}),
            "item_knn_recency": ("item_knn", {"history": None, "recency_decay": 0.8}),
            "ease_recency": ("ease", {"recency_decay": 0.8}),
            "two_tower_single": ("two_tower", {"ensemble_size": 1}),
            "two_tower_mean": ("two_tower", {"history_encoder": "mean", "history_length": 20}),
            "two_tower_gru": ("two_tower", {"history_encoder": "gru"}),
            "two_tower_mixed": ("two_tower", {"num_sampled_negatives": 1024})}
# Rows --models accepts that the default run leaves out (an option measured, not a default).
OPTIONAL = ["two_tower_mixed"]


KERAS = ("mf", "neumf", "two_tower", "two_tower_id", "two_tower_single", "two_tower_mean", "two_tower_gru",
         "two_tower_mixed")
SEEDED = ("als",) + KERAS  # fits that depend on a seed


# Headings of the MovieLens datasets (own data is named by its schema).
LABELS = {"ml-100k": "MovieLens 100K", "ml-1m": "MovieLens 1M", "ml-latest-small": "MovieLens latest-small",
          "ml-latest": "MovieLens latest", "ml-25m": "MovieLens 25M", "ml-32m": "MovieLens 32M"}
GENERALIZATION = "two_tower beats ease_recency (seed means)"


def _fit(name, train, data, seed=0):
    base, hyperparameters = VARIANTS.get(name, (name, {}))
    if name in SEEDED:
        hyperparameters = {**hyperparameters, "seed": seed}
    model = create_model(base, **hyperparameters)
    t0 = time.perf_counter()
    kwargs = {"verbose": 0} if name in KERAS else {}
    model.fit(train, items=data.items, users=data.users, **kwargs)
    return model, time.perf_counter() - t0


def memory_need(name: str, train: pd.DataFrame):
    """(estimated peak bytes, what dominates it) of fitting ``name`` on ``train``, for the models
    whose fit is quadratic in items or users; None for the rest (linear in the interactions).

    EASE holds several dense ``n_items x n_items`` matrices at once (the Gram matrix kept across
    its ``l2`` grid, the factorised copy, the identity solved into the inverse, the weights and
    their float32 copy, plus LAPACK's copies): its fit + full ranking grew the peak RSS by 759 MB on
    3,706 items, 7.2 float64 matrices; the estimate is 8. The kNN similarity products have at most
    ``min(n^2, sum of squared row counts)`` nonzeros, each ~12 bytes in a CSR matrix and held about
    4 times over (product, normalised copy, top-n selection, transpose): measured 518 MB for
    item_knn (estimate 629) and 609 MB for user_knn (estimate 1,670) on 6,040 users x 3,706 items.
    """
    base = VARIANTS.get(name, (name, {}))[0]
    if base == "ease":
        n = int(train["item_id"].nunique())
        return 64.0 * n * n, f"EASE inverts a dense {n:,} x {n:,} item matrix"
    if base in ("item_knn", "user_knn"):
        # item_knn: X^T X over items (each user adds n_u^2 pairs); user_knn: X X^T over users.
        side, other = ("item", "user") if base == "item_knn" else ("user", "item")
        n = int(train[f"{side}_id"].nunique())
        per_row = train[f"{other}_id"].value_counts().to_numpy(dtype=np.float64)
        nnz = min(float(n) * n, float(np.sum(per_row ** 2)))
        return 48.0 * nnz, f"the {side}-{side} similarity over {n:,} {side}s has up to {nnz:,.0f} nonzeros"
    return None


def available_bytes() -> float:
    """MemAvailable from /proc/meminfo (Linux), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:,.1f} GB" if n_bytes >= 2 ** 30 / 10 else f"{n_bytes / 2 ** 20:,.1f} MB"


def generalization_check(mean: dict, status: dict) -> tuple:
    """The target row ``(target, measured, met)`` of "two_tower beats ease_recency" on seed means:
    PASS/FAIL, or "not measured" naming why (a row not asked for, skipped or failed)."""
    missing = [n for n in ("two_tower", "ease_recency") if n not in mean]
    if missing:
        why = "; ".join(f"{n} {status.get(n, 'not in --models')}" for n in missing)
        return GENERALIZATION, f"not measured: {why}", "-"
    tt, er = mean["two_tower"], mean["ease_recency"]
    return GENERALIZATION, f"{tt / max(er, 1e-12):.2f}x ({tt:.4f} vs {er:.4f})", "PASS" if tt > er else "FAIL"


def _log(message: str) -> None:
    print(f"[ranking] {message}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k",
                   help="a MovieLens name (" + ", ".join(LABELS) + ") looked up under --data-dir, or a folder "
                        "with schema.json (default %(default)s)")
    p.add_argument("--data-dir", default=os.environ.get("TFREC_DATA_DIR") or
                   str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    p.add_argument("--models", default=",".join(ALL))
    p.add_argument("--no-cold-start", action="store_true")
    p.add_argument("--seeds", default="0,1,2", help="seeds the seeded models are fitted with (default %(default)s); "
                   "the table reports the mean and sd of full NDCG@10 over them and a per-seed table")
    p.add_argument("--memory-gb", type=float, default=None,
                   help="memory the quadratic models (ease, item/user kNN) may use; a model estimated above it is "
                        "skipped (default: the memory available at start)")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        p.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if not seeds:
        p.error("--seeds: give at least one seed")
    unknown = [n for n in names if n not in ALL + OPTIONAL]
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)}; expected some of: {', '.join(ALL + OPTIONAL)}")
    _log(f"loading {args.dataset} ...")
    step = ""
    try:
        data = open_dataset(args.dataset, data_dir=args.data_dir)
        step = f"{data.source}: the benchmark's leave-last-out split: "
        train, test = leave_last_out_split(data.ratings)
    except TfrecError as exc:  # the loader's message names the folder/file and what it expected
        print(f"ranking.py: error: {step}{exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 3
    # After loading: what the data itself takes is not available to the models.
    budget = args.memory_gb * 2 ** 30 if args.memory_gb is not None else available_bytes()
    label = LABELS.get(data.name, data.name)
    synthetic = data.synthetic or (Path(data.source) / "synthetic.json").is_file()
    if synthetic:
        label += ", SYNTHETIC data"
    n_users, n_items = data.ratings["user_id"].nunique(), data.ratings["item_id"].nunique()
    _log(f"{label}: {len(data.ratings):,} interactions, {n_users:,} users, {n_items:,} items "
         f"(train {len(train):,}, test {len(test):,}) from {data.source}")
    if not args.no_cold_start:
        # Sparse-user slice: users whose history is truncated to their first <= 5 training ratings.
        users = sorted(train.user_id.unique())
        rng = np.random.default_rng(0)
        sparse_users = set(rng.choice(users, size=min(100, len(users)), replace=False))
        sparse_train = pd.concat([
            train[~train.user_id.isin(sparse_users)],
            train[train.user_id.isin(sparse_users)].sort_values("timestamp").groupby("user_id").head(5),
        ]).reset_index(drop=True)
        cold_train, cold_test = cold_start_user_split(data.ratings, test_fraction=0.1, seed=0)
        cold_test = cold_test.sort_values("timestamp").groupby("user_id").tail(1)

    rows, per_seed, status, failed, notes = [], {}, {}, False, {}
    for name in names:
        need = memory_need(name, train)
        if need is not None and need[0] > budget:
            reason = (f"skipped: needs ~{_size(need[0])} ({need[1]}); {_size(budget)} "
                      f"{'allowed (--memory-gb)' if args.memory_gb is not None else 'available'}")
            _log(f"{name}: {reason}")
            rows.append({"model": name, "skipped": reason})
            status[name] = "skipped (memory)"
            continue
        _log(f"{name} ...")
        try:
            row, ndcg = _measure(name, train, test, data, seeds, notes)
            if name in SEEDED:
                per_seed[name] = ndcg
            if not args.no_cold_start:
                sparse_model, _ = _fit(name, sparse_train, data, seed=seeds[0])
                row["sparse<=5_ndcg@10"] = full_ranking(sparse_model, sparse_train, test, users=sparse_users)["ndcg@10"]
                cold_model, _ = _fit(name, cold_train, data, seed=seeds[0])
                row["new_users_ndcg@10"] = full_ranking(cold_model, cold_train, cold_test)["ndcg@10"]
        except (ConfigError, DataError) as exc:  # the model refuses this data, and says why
            reason = f"skipped: {' '.join(str(exc).split())}"
            _log(f"{name}: {reason}")
            rows.append({"model": name, "skipped": reason})
            status[name] = "skipped (refuses the data)"
            per_seed.pop(name, None)
            continue
        except Exception as exc:  # noqa: BLE001 - a long run reports what it measured and goes on
            traceback.print_exc()
            reason = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            _log(f"{name}: {reason}")
            rows.append({"model": name, "skipped": reason})
            status[name] = "failed"
            per_seed.pop(name, None)
            failed = True
            continue
        rows.append(row)
    measured = [r for r in rows if "skipped" not in r]
    table = pd.DataFrame(measured, columns=list(measured[0]) if measured else ["model"]).set_index("model")
    print(f"\n## Ranking on {label} (leave-last-out; full ranking excludes training items)\n")
    print(f"{len(data.ratings):,} interactions, {n_users:,} users, {n_items:,} items; data: {data.source}\n")
    print(_markdown(table, rows))
    if not args.no_cold_start and data.users is None:
        notes["new_users"] = ("`new_users`: this dataset has no users table, so every model -- two_tower "
                              "included -- serves new users by popularity.")
    for note in notes.values():
        print(f"\n{note}")
    print("\n| target | measured | met |\n|---|---|---|")
    for target, value, ok in _checks(table, args, data, status):
        print(f"| {target} | {value} | {ok} |")
    if per_seed and len(seeds) > 1:
        print("\n| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |")
        print("|---|" + "---:|" * (len(seeds) + 2))
        for name, ndcg in per_seed.items():
            print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in ndcg) + f" | {np.mean(ndcg):.4f} | {np.std(ndcg):.4f} |")
    return 1 if failed else 0


def _measure(name, train, test, data, seeds, notes: dict) -> tuple:
    """The table row of ``name`` (first seed's metrics, seed mean/sd of full NDCG@10) and the
    per-seed full NDCG@10 list; each result is logged as soon as it exists."""
    model, fit_s = _fit(name, train, data, seed=seeds[0])
    full = full_ranking(model, train, test)
    try:
        s100 = sampled_ranking(model, train, test, n_negatives=100, seed=0)
    except DataError as exc:  # a catalog too small for 100 unseen items per user: the protocol, not the model
        notes.setdefault("s100", f"`s100` n/a: {' '.join(str(exc).split())}")
        s100 = {"hr@10": float("nan"), "ndcg@10": float("nan")}
    ndcg = [full["ndcg@10"]]
    # Each result as soon as it exists: a long run cut short still reports what it measured.
    _log(f"{name}: seed {seeds[0]} full NDCG@10 {ndcg[0]:.4f} (fit {fit_s:.0f} s)")
    if name in SEEDED:
        for s in seeds[1:]:
            _log(f"{name}: seed {s} ...")
            ndcg.append(full_ranking(_fit(name, train, data, seed=s)[0], train, test)["ndcg@10"])
            _log(f"{name}: seed {s} full NDCG@10 {ndcg[-1]:.4f}")
    row = {"model": name, "fit_s": fit_s, "seeds": float(len(ndcg)), "ndcg@10_mean": float(np.mean(ndcg)),
           "ndcg@10_sd": float(np.std(ndcg)), "full_hr@10": full["hr@10"], "full_ndcg@10": full["ndcg@10"],
           "full_map@10": full["map@10"], "full_recall@10": full["recall@10"], "full_mrr": full["mrr"],
           "coverage": full["coverage"], "s100_hr@10": s100["hr@10"], "s100_ndcg@10": s100["ndcg@10"]}
    return row, ndcg


def _checks(table: pd.DataFrame, args, data, status: dict) -> list:
    """Target rows ``(target, measured, met)``. The ratio targets were set on ML-100K: on other data
    they are printed for reference, and the generalization check is the one that counts there."""
    by = table.to_dict("index")
    mean = {name: row["ndcg@10_mean"] for name, row in by.items()}
    ref = "" if data.name == "ml-100k" else "(ML-100K target, for reference) "
    checks = []
    if "two_tower" in by and "item_knn" in by:
        ratio = mean["two_tower"] / max(mean["item_knn"], 1e-12)
        checks.append((f"{ref}TwoTower full NDCG@10 >= 1.5x ItemKNN (seed means)", f"{ratio:.2f}x", ratio >= 1.5))
    eases = [n for n in ("ease", "ease_recency") if n in by]
    if "two_tower" in by and eases:
        best_ease = max(eases, key=mean.get)
        ratio = mean["two_tower"] / max(mean[best_ease], 1e-12)
        checks.append((f"{ref}TwoTower full NDCG@10 >= 1.2x the best EASE ({best_ease}, seed means)",
                       f"{ratio:.2f}x", ratio >= 1.2))
    if "two_tower" in by and "item_knn_all_history" in by:
        ratio = mean["two_tower"] / max(mean["item_knn_all_history"], 1e-12)
        checks.append(("(for reference) TwoTower vs ItemKNN over the whole history", f"{ratio:.2f}x", ratio >= 1.5))
    if "two_tower" in by and "two_tower_id" in by:
        checks.append(("TwoTower full NDCG@10 > id-only TwoTower (seed means)",
                       f"{mean['two_tower']:.4f} vs {mean['two_tower_id']:.4f}",
                       mean["two_tower"] > mean["two_tower_id"]))
    if len(table) and table["s100_hr@10"].notna().any():
        best = table["s100_hr@10"].idxmax()
        checks.append((f"{ref}best sampled-100 HR@10 >= 0.65", f"{best}: {table.loc[best, 's100_hr@10']:.4f}",
                       table.loc[best, "s100_hr@10"] >= 0.65))
    if not args.no_cold_start and "two_tower" in by and "popularity" in by:
        target = "new users: TwoTower feature path > Popularity"
        if data.users is None:
            checks.append((target, "n/a: no users table (TwoTower falls back to popularity)", "-"))
        else:
            checks.append((target, f"{by['two_tower']['new_users_ndcg@10']:.4f} vs "
                                   f"{by['popularity']['new_users_ndcg@10']:.4f}",
                           by["two_tower"]["new_users_ndcg@10"] > by["popularity"]["new_users_ndcg@10"]))
    checks = [(t, m, ok if isinstance(ok, str) else ("yes" if ok else "NO")) for t, m, ok in checks]
    checks.append(generalization_check(mean, status))
    return checks


def _markdown(table: pd.DataFrame, rows: list) -> str:
    """The table in ``rows``' order; a skipped or failed model is one row whose first cell says why."""
    cols = list(table.columns) or ["fit_s"]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for entry in rows:
        name = entry["model"]
        if "skipped" in entry:
            reason = entry["skipped"].replace("|", "\\|")  # a message may quote a '|'-separated field
            lines.append(f"| {name} | {reason} |" + " |" * (len(cols) - 1))
            continue
        row = table.loc[name]
        cells = ["n/a" if pd.isna(row[c]) else f"{row[c]:.1f}" if c == "fit_s" else f"{row[c]:.0f}" if c == "seeds"
                 else f"{row[c]:.4f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
