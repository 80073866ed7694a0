"""Rating benchmark on MovieLens 100K: RMSE, MAE and fit time of every rating model and two baselines.

    python benchmarks/rating.py [--data-dir ../shared/data] [--models mf,fm,wide_deep,neumf]
                                [--splits random,temporal] [--repeats 1] [--seeds 0] [--no-pipelines]

Splits (tfrec.data): ``random`` -- 80/20, seed 0 (the split of ``tfrec train --split random
--seed 0``); the models hold out 10% of the training split for early stopping and then refit on
all of it. ``temporal`` -- 75/15/10 in time order: models train on the first 75%, early-stop on
the next 15% (no refit) and are scored on the last 10%. The test part is touched once, at the end.

Baselines: the global mean, Surprise's SVD (``scikit-surprise``, the
``bench`` extra; library defaults, seeded), and user + item biases (``mu + b_u + b_i`` with ridge-regularised
biases fitted by alternating closed-form updates in numpy; the two penalties are chosen on the
validation data: 10% carved from the training split, or the temporal split's validation part).

Fit seconds are the wall time of ``model.fit`` (vocabularies, pipelines, training, early stopping
and the refit), the median over ``--repeats`` runs, after one tiny warm-up fit on synthetic data so
TensorFlow's one-off process start-up (kernel and thread-pool initialisation, ~1-2 s) is not
charged to whichever model happens to run first (``--no-warmup`` to include it). Fit CPU seconds
are the process CPU time (user + system, all threads) of the same calls: on a loaded machine wall times
mostly measure waiting for a core, CPU times much less so. The pipelines table fits
MatrixFactorization with Keras ``fit`` (``training_loop="keras"``) over ``pipeline="generator"``
and ``"tensor"``, and with its default graph loop, on the random split. The header prints the CPU
count and load average: on a shared machine times are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pandas as pd

from tfrec.data import load_movielens, random_split, temporal_split
from tfrec.models.registry import create_model

RATING_MODELS = ["mf", "fm", "wide_deep", "neumf"]
BASELINES = ("global_mean", "bias_baseline", "surprise_svd")
# Fixed arguments per model for this benchmark (NeuMF is the rating variant here; its implicit,
# ranking variant is measured by benchmarks/ranking.py). Everything else is the class default.
MODEL_ARGS = {"neumf": {"objective": "rating"}}
TARGETS = {"mf_rmse": 0.910, "best_rmse": 0.900, "mf_fit_seconds": 3.0, "mf_rmse_issue14": 0.907}


def default_data_dir() -> str:
    return os.environ.get("TFREC_DATA_DIR") or str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


# -- baselines ---------------------------------------------------------------------------------------
class GlobalMean:
    """Predicts the training mean for everything."""

    def fit(self, train, **_):
        self.mu_ = float(train["rating"].mean())
        return self

    def predict_ratings(self, users, items):
        return np.full(len(users), self.mu_)


class BiasBaseline:
    """``mu + b_u + b_i`` with ridge penalties ``reg_item`` on b_i and ``reg_user`` on b_u.

    Fitted by alternating exact minimisation (the updates of Koren's baseline predictor): b_i given
    b_u is ``sum(r - mu - b_u) / (reg_item + n_i)``, and b_u given b_i likewise. Unknown ids get 0.
    """

    def __init__(self, reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = 10):
        self.reg_user, self.reg_item, self.n_iter = float(reg_user), float(reg_item), int(n_iter)

    def fit(self, train, **_):
        u_codes, self.users_ = pd.factorize(train["user_id"].astype(str))
        i_codes, self.items_ = pd.factorize(train["item_id"].astype(str))
        r = train["rating"].to_numpy(np.float64)
        self.mu_ = r.mean()
        n_u = np.bincount(u_codes, minlength=len(self.users_))
        n_i = np.bincount(i_codes, minlength=len(self.items_))
        bu, bi = np.zeros(len(self.users_)), np.zeros(len(self.items_))
        for _ in range(self.n_iter):
            bi = np.bincount(i_codes, r - self.mu_ - bu[u_codes], len(self.items_)) / (self.reg_item + n_i)
            bu = np.bincount(u_codes, r - self.mu_ - bi[i_codes], len(self.users_)) / (self.reg_user + n_u)
        self.bu_, self.bi_ = bu, bi
        return self

    def predict_ratings(self, users, items):
        u = pd.Index(self.users_).get_indexer(pd.Index(np.asarray(users).astype(str)))
        i = pd.Index(self.items_).get_indexer(pd.Index(np.asarray(items).astype(str)))
        return self.mu_ + np.where(u >= 0, self.bu_[u], 0.0) + np.where(i >= 0, self.bi_[i], 0.0)


def tuned_bias_baseline(train: pd.DataFrame, val=None, seed: int = 0) -> BiasBaseline:
    """A BiasBaseline whose penalties minimise RMSE on ``val`` (default: 10% carved from ``train``)."""
    fit_part = train
    if val is None:
        fit_part, val = random_split(train, 0.1, seed=seed)
    grid = [1.0, 2.0, 5.0, 10.0, 15.0, 25.0]
    best = min(((_rmse(BiasBaseline(ru, ri).fit(fit_part), val), ru, ri) for ru in grid for ri in grid))
    return BiasBaseline(reg_user=best[1], reg_item=best[2])


class SurpriseSVD:
    """Surprise's ``SVD`` (Funk SVD with biases, SGD in Cython; the library's defaults: 100 factors,
    20 epochs, lr 0.005, reg 0.02), seeded: the fit-time reference of issue 14 for MF."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def fit(self, train, **_):
        from surprise import SVD, Dataset, Reader

        frame = train[["user_id", "item_id", "rating"]].astype({"user_id": str, "item_id": str})
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
        self.algo_ = SVD(random_state=self.seed).fit(trainset)
        return self

    def predict_ratings(self, users, items):
        return np.array([self.algo_.predict(str(u), str(i)).est for u, i in zip(users, items)])


# -- running -----------------------------------------------------------------------------------------
def _rmse(model, test) -> float:
    pred = np.asarray(model.predict_ratings(test["user_id"].to_numpy(), test["item_id"].to_numpy()), np.float64)
    return float(np.sqrt(np.mean((pred - test["rating"].to_numpy(np.float64)) ** 2)))


def _mae(model, test) -> float:
    pred = np.asarray(model.predict_ratings(test["user_id"].to_numpy(), test["item_id"].to_numpy()), np.float64)
    return float(np.mean(np.abs(pred - test["rating"].to_numpy(np.float64))))


def run_model(name: str, data, train, val, test, *, repeats: int = 1, **overrides) -> dict:
    """Fit ``name`` ``repeats`` times; metrics of the last fit, median fit time."""
    times, cpu = [], []
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()  # includes the baseline's penalty search
        if name == "global_mean":
            model = GlobalMean()
        elif name == "bias_baseline":
            model = tuned_bias_baseline(train, val)
        elif name == "surprise_svd":
            model = SurpriseSVD()
        else:
            model = create_model(name, **{**MODEL_ARGS.get(name, {}), **overrides})
        kwargs = {}
        if name not in BASELINES:
            kwargs = dict(items=data.items, users=data.users, verbose=0)
            if val is not None:
                kwargs["validation_data"] = val
        model.fit(train, **kwargs)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    row = {"model": name, "rmse": _rmse(model, test), "mae": _mae(model, test), "fit_seconds": float(np.median(times)),
           "fit_cpu_seconds": float(np.median(cpu))}
    if hasattr(model, "best_epoch_"):
        row["epochs"] = f"{model.best_epoch_}" + (f" (+{model.best_epoch_} refit)" if "refit_loss" in model.history_
                                                  else "")
    elif isinstance(model, BiasBaseline):
        row["epochs"] = f"reg_u={model.reg_user:g}, reg_i={model.reg_item:g}"
    return row


def markdown(rows, columns) -> str:
    """A markdown table: ``columns`` is a list of (header, row key, formatter)."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|---" + "|---:" * (len(columns) - 1) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r[key]) if key in r else "" for _, key, fmt in columns) + " |")
    return "\n".join(lines)


COLUMNS = [
    ("model", "model", str),
    ("RMSE", "rmse", lambda v: f"{v:.4f}"),
    ("MAE", "mae", lambda v: f"{v:.4f}"),
    ("fit s", "fit_seconds", lambda v: f"{v:.2f}"),
    ("fit CPU s", "fit_cpu_seconds", lambda v: f"{v:.2f}"),
    ("epochs / settings", "epochs", str),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=default_data_dir(), help="folder holding ml-100k/ (default: %(default)s)")
    p.add_argument("--models", default=",".join(RATING_MODELS), help="comma-separated registry names")
    p.add_argument("--splits", default="random,temporal", help="random and/or temporal")
    p.add_argument("--repeats", type=int, default=1, help="fit each model this many times; report the median time")
    p.add_argument("--seeds", default="0",
                   help="model seeds, e.g. 0,1,2: each tfrec model is fitted once per seed (on the same split); "
                        "the table's other columns are the first seed's, 'RMSE seeds' and 'RMSE mean' all of them")
    p.add_argument("--no-pipelines", action="store_true", help="skip the generator-vs-tensor pipeline table")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up fit")
    p.add_argument("--json", help="also write all rows to this JSON file")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    if not seeds:
        print(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2", file=sys.stderr)
        return 2
    columns = COLUMNS + ([("RMSE seeds", "rmse_seeds", str), ("RMSE mean", "rmse_mean", lambda v: f"{v:.4f}")]
                         if len(seeds) > 1 else [])
    splits = [s for s in args.splits.split(",") if s]
    data = load_movielens("ml-100k", data_dir=args.data_dir)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"# Rating benchmark: {data.name}, {len(data.ratings)} ratings; {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} at start\n")
    if not args.no_warmup:
        from tfrec.data import synthetic_movielens

        warm = synthetic_movielens(n_users=50, n_items=40, n_ratings=600, seed=0)
        create_model("mf", epochs=1).fit(warm.ratings, verbose=0)
    out: dict = {}
    for split in splits:
        if split == "random":
            train, test = random_split(data.ratings, 0.2, seed=0)
            val = None
            title = "random 80/20 split, seed 0 (validation: 10% of train, then refit on all of train)"
        elif split == "temporal":
            train, val, test = temporal_split(data.ratings, (0.75, 0.15, 0.10))
            title = "temporal 75/15/10 split (train / early-stopping validation / test)"
        else:
            print(f"unknown split {split!r}; expected random or temporal", file=sys.stderr)
            return 2
        rows = []
        for name in list(BASELINES) + names:
            row = run_model(name, data, train, val, test, repeats=args.repeats,
                            **({} if name in BASELINES else {"seed": seeds[0]}))
            if name not in BASELINES and len(seeds) > 1:
                rmse = [row["rmse"]] + [run_model(name, data, train, val, test, seed=s)["rmse"] for s in seeds[1:]]
                row["rmse_seeds"] = " / ".join(f"{v:.4f}" for v in rmse)
                row["rmse_mean"] = float(np.mean(rmse))
            rows.append(row)
            print(f"[{split}] {name}: rmse {row['rmse']:.4f} in {row['fit_seconds']:.2f}s", file=sys.stderr, flush=True)
        print(f"## {title}: train {len(train)}, test {len(test)}\n")
        print(markdown(rows, columns) + "\n")
        out[split] = rows
        if split == "random":
            by = {r["model"]: r for r in rows}
            checks = []
            if "mf" in by:
                checks.append(f"MF RMSE {by['mf']['rmse']:.4f} <= {TARGETS['mf_rmse']}: "
                              f"{'yes' if by['mf']['rmse'] <= TARGETS['mf_rmse'] else 'NO'}")
                checks.append(f"MF fit {by['mf']['fit_seconds']:.2f}s <= {TARGETS['mf_fit_seconds']}s: "
                              f"{'yes' if by['mf']['fit_seconds'] <= TARGETS['mf_fit_seconds'] else 'NO'}")
            if "mf" in by:  # issue 14: faster without losing quality
                checks.append(f"MF RMSE {by['mf']['rmse']:.5f} <= {TARGETS['mf_rmse_issue14']}: "
                              f"{'yes' if by['mf']['rmse'] <= TARGETS['mf_rmse_issue14'] else 'NO'}")
            if "mf" in by and "surprise_svd" in by:  # issue 14: MF fits no slower than Surprise's SVD
                for key, what in (("fit_seconds", "fit"), ("fit_cpu_seconds", "fit CPU")):
                    mf_s, svd_s = by["mf"][key], by["surprise_svd"][key]
                    checks.append(f"MF {what} {mf_s:.2f}s <= Surprise SVD {what} {svd_s:.2f}s: "
                                  f"{'yes' if mf_s <= svd_s else 'NO'}")
            best = min(rows, key=lambda r: r["rmse"])
            checks.append(f"best model {best['model']} RMSE {best['rmse']:.4f} <= {TARGETS['best_rmse']}: "
                          f"{'yes' if best['rmse'] <= TARGETS['best_rmse'] else 'NO'}")
            print("Targets: " + "; ".join(checks) + "\n")
    if not args.no_pipelines:
        train, test = random_split(data.ratings, 0.2, seed=0)
        rows = []
        for loop, pipeline in (("keras", "generator"), ("keras", "tensor"), ("graph", "tensor")):
            row = run_model("mf", data, train, None, test, repeats=args.repeats, pipeline=pipeline,
                            training_loop=loop)
            row["model"] = f"mf, training_loop={loop!r}" + (f", pipeline={pipeline!r}" if loop == "keras" else "")
            rows.append(row)
        print("## Input pipelines and training loops: MatrixFactorization on the random split\n")
        print(markdown(rows, COLUMNS) + "\n")
        fastest = min(rows, key=lambda r: r["fit_seconds"])
        print(f"Faster: {fastest['model']}\n")
        out["pipelines"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
