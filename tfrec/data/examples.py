"""Two small made-up datasets in the ``schema.json`` layout, for tests, the notebook and the README.

Neither is MovieLens-shaped; both are generated (``synthetic`` in spirit: never real data):

* :func:`write_shop_dataset` -- implicit feedback (no rating): customers view products; products
  have a brand, tags, a price and a text title; customers have a country and an age (some missing).
  Each customer prefers two brands and a price band, so item features and history carry signal
  that popularity does not.
* :func:`write_ratings_dataset` -- explicit 1-5 ratings of recipes by cooks with numeric user
  features (experience, spice tolerance) and a cuisine + ingredients per recipe; which recipes a
  cook rates and how depend on the cook's spice tolerance against the recipe's heat and a
  favourite cuisine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec.errors import DataError

_BRANDS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")
_TAGS = ("eco", "sale", "new", "premium", "kids", "outdoor", "home", "sport", "tech", "vintage")
_NOUNS = ("lamp", "chair", "kettle", "jacket", "boots", "speaker", "backpack", "mug", "tent", "watch")
_ADJ = ("red", "compact", "wireless", "classic", "smart", "light", "large", "soft")
_COUNTRIES = ("de", "fr", "us", "jp", "br")
_CUISINES = ("thai", "italian", "mexican", "indian", "french", "japanese")
_INGREDIENTS = ("chili", "garlic", "basil", "rice", "cheese", "tomato", "ginger", "lime", "beans", "fish")


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> str:
    if fmt == "csv":
        frame = frame.copy()
        for col in frame.columns:
            if frame[col].map(lambda v: isinstance(v, list)).any():
                frame[col] = frame[col].map("|".join)
        frame.to_csv(path.with_suffix(".csv"), index=False)
        return path.with_suffix(".csv").name
    if fmt == "parquet":
        frame.to_parquet(path.with_suffix(".parquet"), engine="pyarrow", index=False)
        return path.with_suffix(".parquet").name
    raise DataError(f"format must be 'csv' or 'parquet', got {fmt!r}")


def write_shop_dataset(folder, *, fmt: str = "csv", n_customers: int = 300, n_products: int = 200,
                       events_per_customer: int = 12, seed: int = 0) -> Path:
    """Write an implicit-feedback shop (events, products, customers + schema.json) into ``folder``.

    Returns the folder. Column names are the shop's own (``customer``, ``sku``, ``ts``), not
    tfrec's, so the schema does the mapping.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    brand = rng.integers(0, len(_BRANDS), n_products)
    band = rng.integers(0, 3, n_products)  # price band
    price = np.round(np.exp(2.5 + band + rng.normal(0, 0.3, n_products)), 2)
    products = pd.DataFrame({
        "sku": [f"P{j:04d}" for j in range(n_products)],
        "brand": [_BRANDS[b] for b in brand],
        "tags": [sorted({_TAGS[t] for t in rng.choice(len(_TAGS), rng.integers(1, 4), replace=False)})
                 for _ in range(n_products)],
        "price": price,
        "title": [f"{_BRANDS[b]} {_ADJ[rng.integers(len(_ADJ))]} {_NOUNS[rng.integers(len(_NOUNS))]}"
                  for b in brand],
    })
    likes = np.stack([rng.choice(len(_BRANDS), 2, replace=False) for _ in range(n_customers)])
    their_band = rng.integers(0, 3, n_customers)
    country = rng.integers(0, len(_COUNTRIES), n_customers)
    age = rng.integers(18, 70, n_customers).astype(float)
    age[rng.random(n_customers) < 0.1] = np.nan  # some customers did not say
    customers = pd.DataFrame({"customer": [f"C{u:04d}" for u in range(n_customers)],
                              "country": [_COUNTRIES[c] for c in country], "age": age})
    rows = []
    t0 = 1_700_000_000
    for u in range(n_customers):
        fit = np.isin(brand, likes[u]).astype(float) * 8.0 + (band == their_band[u]) * 3.0 + 0.2
        p = fit / fit.sum()
        picked = rng.choice(n_products, events_per_customer, replace=False, p=p)
        times = t0 + np.sort(rng.integers(0, 90 * 86400, events_per_customer))
        rows += [(f"C{u:04d}", f"P{j:04d}", int(t)) for j, t in zip(picked, times)]
    events = pd.DataFrame(rows, columns=["customer", "sku", "ts"])
    schema = {
        "name": "shop",
        "interactions": {"path": _write(events, folder / "events", fmt), "user_id": "customer", "item_id": "sku",
                         "rating": None, "timestamp": "ts"},
        "items": {"path": _write(products, folder / "products", fmt), "id": "sku",
                  "features": {"brand": "categorical", "tags": "multi_categorical", "price": "numeric",
                               "title": "text"}},
        "users": {"path": _write(customers, folder / "customers", fmt), "id": "customer",
                  "features": {"country": "categorical", "age": "numeric"}},
    }
    (folder / "schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    return folder


def write_ratings_dataset(folder, *, fmt: str = "csv", n_cooks: int = 250, n_recipes: int = 150,
                          ratings_per_cook: int = 14, seed: int = 0) -> Path:
    """Write an explicit-rating dataset (recipes rated 1-5 by cooks with numeric features)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cuisine = rng.integers(0, len(_CUISINES), n_recipes)
    heat = rng.random(n_recipes)
    recipes = pd.DataFrame({
        "recipe_id": np.arange(1, n_recipes + 1),
        "cuisine": [_CUISINES[c] for c in cuisine],
        "ingredients": [sorted({_INGREDIENTS[i] for i in rng.choice(len(_INGREDIENTS), 3, replace=False)})
                        for _ in range(n_recipes)],
        "heat": np.round(heat * 10, 1),
    })
    tolerance = rng.random(n_cooks)
    favourite = rng.integers(0, len(_CUISINES), n_cooks)
    cooks = pd.DataFrame({"cook_id": np.arange(1, n_cooks + 1),
                          "experience_years": rng.integers(0, 30, n_cooks).astype(float),
                          "spice_tolerance": np.round(tolerance * 10, 1)})
    rows = []
    t0 = 1_600_000_000
    for u in range(n_cooks):
        # Cooks mostly pick recipes of their favourite cuisine near their spice tolerance, and rate
        # by heat against tolerance: the user features say something about what a cook picks.
        p = np.where(cuisine == favourite[u], 6.0, 1.0) * np.exp(-4.0 * np.abs(heat - tolerance[u]))
        picked = rng.choice(n_recipes, ratings_per_cook, replace=False, p=p / p.sum())
        for j, t in zip(picked, np.sort(rng.integers(0, 365 * 86400, ratings_per_cook))):
            score = 3.6 - 3.0 * abs(heat[j] - tolerance[u]) + 0.8 * (cuisine[j] == favourite[u]) + rng.normal(0, 0.4)
            rows.append((u + 1, j + 1, float(np.clip(np.round(score), 1, 5)), t0 + int(t)))
    ratings = pd.DataFrame(rows, columns=["cook_id", "recipe_id", "stars", "rated_at"])
    ratings["rated_at"] = pd.to_datetime(ratings["rated_at"], unit="s")
    schema = {
        "name": "recipes",
        "interactions": {"path": _write(ratings, folder / "ratings", fmt), "user_id": "cook_id",
                         "item_id": "recipe_id", "rating": "stars", "timestamp": "rated_at"},
        "items": {"path": _write(recipes, folder / "recipes", fmt), "id": "recipe_id",
                  "features": {"cuisine": "categorical", "ingredients": "multi_categorical", "heat": "numeric"}},
        "users": {"path": _write(cooks, folder / "cooks", fmt), "id": "cook_id",
                  "features": {"experience_years": "numeric", "spice_tolerance": "numeric"}},
    }
    (folder / "schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    return folder
