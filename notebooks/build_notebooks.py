"""Writes the tutorial notebooks from the cell sources below (run: python notebooks/build_notebooks.py).

Keeping the sources here keeps notebook diffs reviewable; the .ipynb files are committed unexecuted
and `tests/test_notebooks.py` executes every one of them (small settings via TFREC_NOTEBOOK_QUICK=1).
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''import os
import tfrec  # sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
QUICK = os.environ.get("TFREC_NOTEBOOK_QUICK") == "1"  # the test suite runs notebooks on small settings
DATA_DIR = os.environ.get("TFREC_DATA_DIR")  # a folder holding ml-100k/; None -> download (cached)'''

NOTEBOOKS = {
    "01_data_exploration.ipynb": [
        new_markdown_cell("# MovieLens 100K: a first look\n\nLoad the data with `tfrec.data.load_movielens`, "
                          "look at its shape, and make the splits the rest of tfrec uses."),
        new_code_cell(SETUP),
        new_code_cell('from tfrec.data import load_movielens\ndata = load_movielens("ml-100k", data_dir=DATA_DIR)\ndata'),
        new_code_cell("summary = data.describe()\n{k: summary[k] for k in ('n_ratings', 'n_users', 'n_items', 'sparsity', 'rating_mean')}"),
        new_code_cell("summary['rating_histogram'], summary['top_genres']"),
        new_code_cell("data.ratings.head()"),
        new_code_cell("data.items.head()"),
        new_code_cell("data.users.head()"),
        new_markdown_cell("## Long tail\nA few items get most ratings: this is why popularity is a strong baseline "
                          "and why sampled metrics flatter models."),
        new_code_cell("counts = data.ratings['item_id'].value_counts()\n"
                      "share_top_10pct = counts.head(len(counts) // 10).sum() / counts.sum()\n"
                      "print(f'top 10% of items get {share_top_10pct:.0%} of ratings')"),
        new_markdown_cell("## Splits\nEvery split is a pure function of the ratings and a seed."),
        new_code_cell("from tfrec.data import random_split, temporal_split, leave_last_out_split\n"
                      "train, test = random_split(data.ratings, test_fraction=0.2, seed=0)\n"
                      "t_train, t_val, t_test = temporal_split(data.ratings)\n"
                      "l_train, l_test = leave_last_out_split(data.ratings)\n"
                      "assert t_train.timestamp.max() <= t_val.timestamp.min() <= t_test.timestamp.min()\n"
                      "len(train), len(test), len(t_train), len(t_val), len(t_test), len(l_test)"),
        new_markdown_cell("## tf.data\nThe same feature dicts from the generator- and tensor-based pipelines."),
        new_code_cell("from tfrec.data import make_dataset\n"
                      "ds = make_dataset(train, items=data.items, users=data.users, pipeline='tensor', batch_size=4, shuffle=False)\n"
                      "batch = next(iter(ds))\n{k: v.numpy().tolist() for k, v in batch.items() if k != 'genres'}"),
    ],
    "02_rating_models.ipynb": [
        new_markdown_cell("# Rating models: matrix factorization biases, Wide & Deep\n\n"
                          "Train MF with biases and read its biases: the items it thinks are best or worst "
                          "regardless of who watches them."),
        new_code_cell(SETUP),
        new_code_cell('import tfrec\nfrom tfrec.data import load_movielens\n'
                      'data = load_movielens("ml-100k", data_dir=DATA_DIR)\n'
                      'mf = tfrec.train("mf", data, split="random", seed=0, verbose=0, **({"epochs": 2} if QUICK else {}))\n'
                      'mf.metrics["rmse"], mf.metrics["mae"], mf.metrics["fit_seconds"]'),
        new_markdown_cell("## What the biases mean\nThe item bias is the part of a rating explained by the item alone. "
                          "High-bias items are liked even by people who rate harshly."),
        new_code_cell("titles = data.items.set_index('item_id')['title']\n"
                      "best = mf.model.top_items_by_bias(n=10)\n"
                      "worst = mf.model.top_items_by_bias(n=10, worst=True)\n"
                      "print('best:', [titles[i] for i in best.item_id])\nprint('worst:', [titles[i] for i in worst.item_id])"),
        new_code_cell("mf.model.recommend(['1'], k=5).assign(title=lambda d: d.item_id.map(titles))"),
        new_markdown_cell("## Wide & Deep\nWide: one-hot demographics, multi-hot genres and their crosses. "
                          "Deep: embeddings + MLP."),
        new_code_cell('wd = tfrec.train("wide_deep", data, split="random", seed=0, verbose=0, **({"epochs": 1} if QUICK else {}))\n'
                      'wd.metrics["rmse"], wd.metrics["fit_seconds"]'),
        new_code_cell("import pandas as pd\npd.DataFrame({'mf': mf.metrics, 'wide_deep': wd.metrics}).loc[['rmse', 'mae', 'fit_seconds']]"),
    ],
    "03_two_tower_retrieval.ipynb": [
        new_markdown_cell("# Two-tower retrieval with TFRS: cold start, similar items, diversity"),
        new_code_cell(SETUP),
        new_code_cell('import tfrec\nfrom tfrec.data import load_movielens\n'
                      'data = load_movielens("ml-100k", data_dir=DATA_DIR)\n'
                      'tt = tfrec.train("two_tower", data, split="leave_last_out", verbose=0, **({"epochs": 1} if QUICK else {}))\n'
                      'tt.metrics["full"], tt.metrics["sampled_100"]'),
        new_code_cell("titles = data.items.set_index('item_id')['title']\n"
                      "tt.model.recommend('1', k=10).assign(title=lambda d: d.item_id.map(titles))"),
        new_markdown_cell("## Similar items from the candidate embeddings"),
        new_code_cell("tt.model.similar_items(['50'], k=5).assign(title=lambda d: d.similar_item_id.map(titles))"),
        new_markdown_cell("## Cold start: a brand-new user known only by demographics\n"
                          "The query tower's feature path scores users it has never seen."),
        new_code_cell("emb = tt.model.query_from_demographics(gender=['F'], age=[23], occupation=['student'], zip=['94305'])\n"
                      "emb.shape"),
        new_markdown_cell("## Diversity: MMR re-ranking"),
        new_code_cell("from tfrec.evaluation import mmr_rerank\n"
                      "import inspect\nprint(inspect.signature(mmr_rerank))"),
        new_code_cell("cands = tt.model.recommend('1', k=50)\n"
                      "ids, vecs = tt.model.candidate_embeddings()\n"
                      "vectors = dict(zip(ids, vecs))\n"
                      "reranked = mmr_rerank(cands, vectors, lambda_=0.5, k=10)\n"
                      "reranked.assign(title=lambda d: d.item_id.map(titles))"),
    ],
    "04_export_and_serving.ipynb": [
        new_markdown_cell("# Export a SavedModel and serve it over TF Serving's REST API\n\n"
                          "The same requests work against `tensorflow_model_server` (see serving_configs/)."),
        new_code_cell(SETUP),
        new_code_cell('import tempfile, tfrec\nfrom tfrec.data import load_movielens\n'
                      'data = load_movielens("ml-100k", data_dir=DATA_DIR)\n'
                      'work = tempfile.mkdtemp()\n'
                      'mf = tfrec.train("mf", data, output=f"{work}/run-mf", verbose=0, **({"epochs": 2} if QUICK else {}))'),
        new_code_cell('from tfrec.export import export_model\n'
                      'info = export_model(mf.run_dir, name="mf", base_dir=f"{work}/export")\ninfo["paths"]'),
        new_markdown_cell("## Load it in plain TensorFlow"),
        new_code_cell('import tensorflow as tf\nloaded = tf.saved_model.load(info["paths"][0])\n'
                      'list(loaded.signatures)'),
        new_code_cell('out = loaded.signatures["serving_default"](user_id=tf.constant(["1", "2"]), item_id=tf.constant(["50", "50"]))\n'
                      'out["rating"].numpy()'),
        new_markdown_cell("## Serve it locally and call it over REST"),
        new_code_cell('from tfrec.demo import models_config_text, start_server, wait_until_available, _free_port\n'
                      'from pathlib import Path\nfrom tfrec.serving import Client\n'
                      'cfg = Path(work) / "models.config"\ncfg.write_text(models_config_text({"mf": Path(work) / "export" / "mf"}))\n'
                      'port = _free_port()\nproc = start_server(cfg, port, Path(work) / "server.log")\n'
                      'client = Client(f"http://127.0.0.1:{port}", model="mf")\n'
                      'wait_until_available(client, ["mf"], proc)'),
        new_code_cell('try:\n    print(client.predict(instances=[{"user_id": "1", "item_id": "50"}]))\nfinally:\n'
                      '    proc.terminate(); proc.wait(timeout=20)'),
    ],
    "05_your_own_data.ipynb": [
        new_markdown_cell("# Your own data: interaction logs and side features beyond MovieLens\n\n"
                          "A dataset folder holds `schema.json` and the CSV or Parquet files it names: the "
                          "interactions (your own column names for user, item, and optional rating and timestamp) "
                          "and optional item and user tables whose features are typed `categorical`, "
                          "`multi_categorical`, `numeric` or `text`. Here: a made-up shop with implicit feedback."),
        new_code_cell(SETUP),
        new_code_cell('import json, tempfile\nfrom pathlib import Path\nimport pandas as pd\n'
                      'from tfrec.data.examples import write_shop_dataset\n'
                      'work = Path(tempfile.mkdtemp())\n'
                      'shop = write_shop_dataset(work / "shop", fmt="csv")\n'
                      'sorted(p.name for p in shop.iterdir())'),
        new_code_cell('pd.read_csv(shop / "products.csv").head(3)'),
        new_markdown_cell("## A starter schema from the files\n`tfrec data schema FILE ...` (or `infer_schema`) "
                          "guesses the roles and feature types from the columns; check and edit what it prints."),
        new_code_cell('from tfrec.data import infer_schema\n'
                      'schema = infer_schema([shop / "events.csv", shop / "products.csv", shop / "customers.csv"], name="shop")\n'
                      'print(json.dumps(schema, indent=2))'),
        new_markdown_cell("## Load it\n`load_dataset` returns the same dataset type as `load_movielens`: ids "
                          "become `user_id` / `item_id`, features keep the schema's names. Bad data is a `DataError` "
                          "naming the file, column and line."),
        new_code_cell('from tfrec.data import load_dataset\ndata = load_dataset(shop)\n'
                      's = data.describe()\n{k: s[k] for k in ("n_ratings", "n_users", "n_items", "implicit")}, s["features"]["tags"]'),
        new_code_cell('from tfrec.errors import DataError\n'
                      'bad = work / "bad"; bad.mkdir()\n'
                      'for f in ("schema.json", "products.csv", "customers.csv"):\n'
                      '    (bad / f).write_text((shop / f).read_text())\n'
                      '(bad / "events.csv").write_text("customer,sku,ts\\nC0001,P0001,1700000000\\nC0001,P0002,yesterday\\n")\n'
                      'try:\n    load_dataset(bad)\nexcept DataError as e:\n    print(e)'),
        new_markdown_cell("## Train: the two-tower builds its towers from the schema\n"
                          "Customers' country (categorical) and age (numeric, some missing) feed the query tower; "
                          "brand, tags (pooled), price (standardised with training statistics, plus a missing "
                          "indicator) and the title (tokenised in-graph, pooled) feed the candidate tower."),
        new_code_cell('import tfrec\nhp = {"epochs": 2, "ensemble_size": 1} if QUICK else {}\n'
                      'tt = tfrec.train("two_tower", data, split="leave_last_out", output=work / "run-tt", verbose=0, **hp)\n'
                      'pop = tfrec.train("popularity", data, split="leave_last_out", verbose=0)\n'
                      'pd.DataFrame({"two_tower": tt.metrics["full"], "popularity": pop.metrics["full"]}).loc[["ndcg@10", "hr@10"]]'),
        new_code_cell('tt.model.side_features'),
        new_markdown_cell("Rating models refuse implicit data, naming the missing column:"),
        new_code_cell('try:\n    tfrec.train("mf", data, verbose=0)\nexcept DataError as e:\n    print(e)'),
        new_markdown_cell("## Recommend, and score a brand-new customer by their features"),
        new_code_cell('titles = data.items.set_index("item_id")["title"]\n'
                      'tt.model.recommend("C0001", k=5).assign(title=lambda d: d.item_id.map(titles))'),
        new_code_cell('q = tt.model.query_from_features({"country": ["fr"], "age": [float("nan")]})\n'
                      'ids, cand = tt.model.candidate_embeddings()\n[titles[i] for i in ids[(q @ cand.T)[0].argsort()[::-1][:5]]]'),
        new_markdown_cell("## Export: `recommend_new_user` takes exactly the schema's user features"),
        new_code_cell('from tfrec.export import export_model\n'
                      'info = export_model(tt.run_dir, name="shop", base_dir=work / "export", scann=False)\n'
                      'info["model_card"]["signatures"]["recommend_new_user"], info["model_card"]["schema"]["interactions"]'),
        new_code_cell('import tensorflow as tf\nloaded = tf.saved_model.load(info["paths"][0])\n'
                      'out = loaded.signatures["recommend_new_user"](country=tf.constant(["fr"]), age=tf.constant([float("nan")]))\n'
                      '[titles[i.decode()] for i in out["item_ids"].numpy()[0][:5]]'),
        new_markdown_cell("## DataFrames instead of files\nThe same schema, given the frames directly "
                          "(paths are then ignored)."),
        new_code_cell('frames = load_dataset(schema=json.loads((shop / "schema.json").read_text()),\n'
                      '                      interactions=pd.read_csv(shop / "events.csv"),\n'
                      '                      items=pd.read_csv(shop / "products.csv"), users=pd.read_csv(shop / "customers.csv"))\n'
                      'frames.ratings.equals(data.ratings)'),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
