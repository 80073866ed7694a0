"""Every embedding table of a model starts from its own random draw (tfrec/models/initializers.py)."""

import itertools

import numpy as np
import pytest

from tfrec.models.initializers import random_normal, table_seed
from tfrec.models.registry import create_model


def test_table_seed_depends_on_the_seed_and_the_name():
    assert table_seed(0, "user_embedding") == table_seed(0, "user_embedding")
    assert table_seed(0, "user_embedding") != table_seed(0, "item_embedding")
    assert table_seed(0, "user_embedding") != table_seed(1, "user_embedding")
    assert 0 <= table_seed(2**40, "x") < 2**31


def test_one_seed_gives_two_tables_different_rows():
    a = random_normal(0, "user_embedding")((20, 8)).numpy()
    b = random_normal(0, "item_embedding")((30, 8)).numpy()
    assert not np.allclose(a, b[:20])
    np.testing.assert_array_equal(a, random_normal(0, "user_embedding")((20, 8)).numpy())  # reproducible


@pytest.mark.parametrize("name", ["mf", "fm", "wide_deep", "neumf", "two_tower"])
def test_no_two_tables_of_a_model_start_with_equal_rows(name, synthetic_data):
    """A seeded Keras initializer draws the same numbers at every call: tables built from one such
    initializer started with equal leading rows (user k's factors equal to item k's)."""
    model = create_model(name, seed=3)
    model._prepare(synthetic_data.ratings, synthetic_data.items, synthetic_data.users)
    model._build_all_variables()
    tables = [v for v in model.variables if v.trainable and len(v.shape) == 2 and v.shape[0] > 2
              and float(np.abs(v.numpy()).sum()) > 0]  # random tables (zero-initialised ones are alike by design)
    assert len(tables) >= 2, [v.name for v in model.variables]
    for a, b in itertools.combinations(tables, 2):
        rows = min(a.shape[0], b.shape[0])
        if a.shape[1] == b.shape[1]:
            assert not np.allclose(a.numpy()[:rows], b.numpy()[:rows]), (a.name, b.name)
        flat_a, flat_b = a.numpy().ravel(), b.numpy().ravel()  # another width, the same stream?
        n = min(flat_a.size, flat_b.size)
        assert not np.allclose(flat_a[:n] / np.std(flat_a), flat_b[:n] / np.std(flat_b)), (a.name, b.name)
