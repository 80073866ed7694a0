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


@pytest.mark.parametrize("name, settings", [("mf", {}), ("fm", {}), ("wide_deep", {}), ("neumf", {}),
                                            ("two_tower", {}), ("two_tower", {"history_encoder": "gru"})])
def test_no_two_weights_of_a_model_start_from_one_draw(name, settings, synthetic_data):
    """A seeded Keras initializer draws the same numbers at every call (and MultiHeadAttention clones
    its one initializer, seed included, for the query, key, value and output kernels): weights built
    from one seed started equal or as one stream rescaled (user k's factors equal to item k's)."""
    model = create_model(name, seed=3, **settings)
    model._prepare(synthetic_data.ratings, synthetic_data.items, synthetic_data.users)
    model._build_all_variables()
    random = [v for v in model.variables if v.trainable and len(v.shape) >= 2 and v.shape.num_elements() >= 64
              and float(np.std(v.numpy())) > 0]  # zero- or constant-initialised weights are alike by design
    assert len(random) >= 2, [v.name for v in model.variables]
    for a, b in itertools.combinations(random, 2):
        flat_a, flat_b = a.numpy().ravel(), b.numpy().ravel()
        n = min(flat_a.size, flat_b.size)
        # Independent draws: |correlation| ~ 1/sqrt(n) <= 1/8; one stream rescaled: ~1.
        assert abs(np.corrcoef(flat_a[:n], flat_b[:n])[0, 1]) < 0.8, (a.name, b.name)
