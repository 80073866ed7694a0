"""Your own data: schema.json parsing, CSV/Parquet loading, DataErrors, inference, chunked reads."""

import json

import numpy as np
import pandas as pd
import pytest

from tfrec.data import InteractionData, MovieLensData, Schema, infer_schema, iter_interactions, load_dataset
from tfrec.data import make_dataset, open_dataset
from tfrec.data.examples import write_ratings_dataset, write_shop_dataset
from tfrec.data.features import feature_types
from tfrec.data.vocab import fit_vocabularies
from tfrec.errors import DataError

SHOP = {
    "name": "shop",
    "interactions": {"path": "events.csv", "user_id": "customer", "item_id": "sku", "rating": None, "timestamp": "ts"},
    "items": {"path": "items.csv", "id": "sku",
              "features": {"brand": "categorical", "tags": "multi_categorical", "price": "numeric", "title": "text"}},
    "users": {"path": "users.csv", "id": "customer", "features": {"country": "categorical", "age": "numeric"}},
}


def _folder(tmp_path, schema=SHOP, events=None, items=None, users=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "events.csv").write_text(events or "customer,sku,ts\nc1,s1,100\nc1,s2,200\nc2,s1,150\n")
    (tmp_path / "items.csv").write_text(items or "sku,brand,tags,price,title\ns1,acme,eco|sale,9.5,Red Lamp\n"
                                                  "s2,globex,,,Blue chair\n")
    (tmp_path / "users.csv").write_text(users or "customer,country,age\nc1,de,31\nc2,fr,\n")
    return tmp_path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_shop_loads_the_same_from_csv_and_parquet(tmp_path, fmt):
    data = load_dataset(write_shop_dataset(tmp_path / fmt, fmt=fmt, n_customers=40, n_products=30,
                                           events_per_customer=5))
    assert isinstance(data, MovieLensData) and InteractionData is MovieLensData
    assert list(data.ratings.columns) == ["user_id", "item_id", "timestamp"]  # implicit: no rating column
    assert not data.has_ratings and data.has_timestamps and not data.is_movielens
    assert list(data.items.columns) == ["item_id", "brand", "tags", "price", "title"]
    assert all(isinstance(t, list) for t in data.items["tags"])
    assert data.items["price"].dtype == np.float64
    assert data.users["age"].isna().sum() > 0  # missing numeric values stay missing
    assert feature_types(data.items) == {"brand": "categorical", "tags": "multi_categorical", "price": "numeric",
                                         "title": "text"}
    assert data.schema.user_features == {"country": "categorical", "age": "numeric"}
    other = load_dataset(write_shop_dataset(tmp_path / "again", fmt="csv" if fmt == "parquet" else "parquet",
                                            n_customers=40, n_products=30, events_per_customer=5))
    pd.testing.assert_frame_equal(data.ratings, other.ratings)
    pd.testing.assert_frame_equal(data.items, other.items)


def test_load_from_dataframes_and_schema_path(tmp_path):
    folder = write_ratings_dataset(tmp_path / "r", n_cooks=20, n_recipes=15, ratings_per_cook=4)
    from_file = load_dataset(folder / "schema.json")
    schema = json.loads((folder / "schema.json").read_text())
    frames = load_dataset(schema=schema, interactions=pd.read_csv(folder / "ratings.csv"),
                          items=pd.read_csv(folder / "recipes.csv"), users=pd.read_csv(folder / "cooks.csv"))
    pd.testing.assert_frame_equal(from_file.ratings, frames.ratings)
    assert from_file.ratings["rating"].dtype == np.float32
    assert from_file.ratings["timestamp"].dtype == np.int64 and from_file.ratings["timestamp"].min() > 1.5e9
    assert from_file.ratings["user_id"].iloc[0] == "1"  # integer ids become "1", not "1.0"
    assert open_dataset(str(folder)).name == "recipes"


def test_features_flow_into_vocabularies_and_pipelines(tmp_path):
    data = load_dataset(_folder(tmp_path))
    vocabs = fit_vocabularies(data.ratings, items=data.items, users=data.users)
    assert vocabs["tags"].values == ["eco", "sale"] and "red" in vocabs["title"].values
    assert vocabs["country"].values == ["de", "fr"]
    batch = next(iter(make_dataset(data.ratings, items=data.items, users=data.users, shuffle=False, batch_size=8)))
    assert sorted(batch) == ["age", "brand", "country", "item_id", "price", "tags", "timestamp", "title", "user_id"]
    assert batch["tags"].shape == (3, 2) and batch["price"].dtype.name == "float32"
    assert np.isnan(batch["age"].numpy()[2])  # c2 has no age
    gen = next(iter(make_dataset(data.ratings, items=data.items, users=data.users, shuffle=False, batch_size=8,
                                 pipeline="generator")))
    for k in batch:
        a, b = gen[k].numpy(), batch[k].numpy()
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), k


@pytest.mark.parametrize("change, message", [
    (dict(events="customer,sku\nc1,s1\n"), "events.csv, line 1: header: missing column(s) ['ts']"),
    (dict(events="customer,sku,ts\nc1,s1,100\nc1,s2,yesterday\n"), "events.csv, line 3, column 'ts': 'yesterday'"),
    (dict(events="customer,sku,ts\nc1,s1,100\n,s2,200\n"), "events.csv, line 3, column 'customer': missing id"),
    (dict(items="sku,brand,tags,price,title\ns1,a,,1,x\ns2,b,,cheap,y\n"), "items.csv, line 3, column 'price': 'cheap'"),
    (dict(items="sku,brand,tags,price,title\ns1,a,,1,x\ns2,b,,2,y\ns1,c,,3,z\n"),
     "items.csv, line 4, column 'sku': duplicate id 's1' (first at line 2)"),
    (dict(users="customer,country,age\nc1,de,1\nc1,fr,2\n"), "users.csv, line 3, column 'customer': duplicate id"),
    (dict(items="sku,brand,tags,price,title\ns1,a,,1,x\n"),
     "events.csv: 1 interaction(s) on 1 item id(s) that the items table does not list (e.g. 's2')"),
])
def test_bad_files_name_file_line_and_column(tmp_path, change, message):
    with pytest.raises(DataError) as err:
        load_dataset(_folder(tmp_path, **change))
    assert message in str(err.value)


def test_empty_file_unknown_type_and_schema_errors(tmp_path):
    folder = _folder(tmp_path)
    (folder / "users.csv").write_text("")
    with pytest.raises(DataError, match="users.csv: the file is empty"):
        load_dataset(folder)
    bad = json.loads(json.dumps(SHOP))
    bad["items"]["features"]["brand"] = "category"
    with pytest.raises(DataError, match=r"items.features.brand: unknown feature type 'category'"):
        Schema.from_dict(bad)
    bad = json.loads(json.dumps(SHOP))
    bad["users"]["features"]["brand"] = "categorical"
    with pytest.raises(DataError, match=r"\['brand'\] appear in both items and users"):
        Schema.from_dict(bad)
    with pytest.raises(DataError, match="interactions.user_id must be a non-empty string"):
        Schema.from_dict({"interactions": {"path": "e.csv", "item_id": "i"}})
    with pytest.raises(DataError, match="no schema.json there"):
        load_dataset(tmp_path / "nowhere")


def test_unknown_items_policy_counts_and_never_drops_silently(tmp_path):
    items = "sku,brand,tags,price,title\ns1,acme,,1,x\n"
    for policy, n_rows in (("drop", 2), ("keep", 3)):
        schema = {**SHOP, "unknown_items": policy}
        with pytest.warns(UserWarning, match=f"1 interaction.*unknown_items={policy}"):
            data = load_dataset(_folder(tmp_path / policy, schema=schema, items=items))
        assert len(data.ratings) == n_rows and data.extras["unknown_items"] == 1


def test_parquet_list_column_and_wrong_type(tmp_path):
    folder = _folder(tmp_path)
    pd.DataFrame({"sku": ["s1", "s2"], "brand": ["a", "b"], "tags": [["x", "y"], []], "price": [1.0, None],
                  "title": ["t", None]}).to_parquet(folder / "items.parquet")
    schema = json.loads(json.dumps(SHOP))
    schema["items"]["path"] = "items.parquet"
    (folder / "schema.json").write_text(json.dumps(schema))
    data = load_dataset(folder)
    assert data.items["tags"].tolist() == [["x", "y"], []] and data.items["title"].tolist() == ["t", ""]
    pd.DataFrame({"sku": ["s1", "s2"], "brand": [["a"], ["b"]], "tags": [[], []], "price": [1.0, 2.0],
                  "title": ["t", "u"]}).to_parquet(folder / "items.parquet")
    with pytest.raises(DataError, match=r"items.parquet, row 1, column 'brand'.*one value per row"):
        load_dataset(folder)


def test_infer_schema_finds_roles_and_types(tmp_path):
    folder = write_ratings_dataset(tmp_path / "r", fmt="parquet", n_cooks=20, n_recipes=15, ratings_per_cook=4)
    schema = infer_schema(sorted(folder.glob("*.parquet")))
    assert schema["interactions"] == {"path": "ratings.parquet", "user_id": "cook_id", "item_id": "recipe_id",
                                      "rating": "stars", "timestamp": "rated_at"}
    assert schema["items"]["features"] == {"cuisine": "categorical", "ingredients": "multi_categorical",
                                           "heat": "numeric"}
    assert schema["users"]["features"] == {"experience_years": "numeric", "spice_tolerance": "numeric"}
    shop = write_shop_dataset(tmp_path / "s", n_customers=30, n_products=25, events_per_customer=4)
    schema = infer_schema([shop / "events.csv", shop / "products.csv", shop / "customers.csv"])
    assert schema["items"]["features"]["title"] == "text" and schema["items"]["features"]["tags"] == "multi_categorical"
    assert schema["interactions"]["timestamp"] == "ts" and schema["interactions"]["rating"] is None


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunked_interactions_match_the_whole_read(tmp_path, fmt):
    folder = write_shop_dataset(tmp_path, fmt=fmt, n_customers=30, n_products=20, events_per_customer=5)
    chunks = list(iter_interactions(folder, chunksize=40))
    assert len(chunks) == 4
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), load_dataset(folder).ratings)


def test_chunked_errors_keep_the_file_line(tmp_path):
    rows = "".join(f"c{j},s1,{j}\n" for j in range(10))
    folder = _folder(tmp_path, events="customer,sku,ts\n" + rows + "c9,s1,soon\n")
    with pytest.raises(DataError, match=r"events.csv, line 12, column 'ts'"):
        list(iter_interactions(folder, chunksize=4))


def test_movielens_is_a_builtin_schema_of_the_same_kind():
    from tfrec.data import synthetic_movielens

    data = synthetic_movielens(n_users=30, n_items=20, n_ratings=200, seed=0)
    assert isinstance(data.schema, Schema) and data.schema.builtin == "movielens" and data.is_movielens
    assert data.schema.item_features["genres"] == "multi_categorical"
    assert "top_genres" in data.describe()
