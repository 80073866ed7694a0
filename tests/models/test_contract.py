"""One recommender contract, run against every model in tfrec that can rank.

To register a model, add ``(name, factory)`` to ``CONTRACT_MODELS``: ``factory()`` returns a new,
unfitted model with tiny hyperparameters. Every check in ``contract.RecommenderContract.CHECKS``
then runs against it on the shared synthetic data (``synthetic_data`` from tests/conftest.py).
Models whose two same-seed fits agree only up to float noise (Keras on several CPU threads) go in
``APPROXIMATE_REFIT``.
"""

import importlib

import pytest

from contract import RecommenderContract
from tfrec.models.baselines import ContentTFIDF, CoVisitation, ItemKNN, Popularity, UserKNN


def _registered(name: str, module: str, **hyperparameters):
    """Factory for a registry model; skips only while its module has not been written yet."""

    def factory():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                pytest.skip(f"{module} does not exist yet")
            raise
        from tfrec.models.registry import create_model

        return create_model(name, **hyperparameters)

    return factory


CONTRACT_MODELS = [
    ("popularity", lambda: Popularity()),
    ("item_knn", lambda: ItemKNN()),
    ("item_knn_classic", lambda: ItemKNN(n_neighbors=20, shrinkage=0.0, weighted=True, history=None)),
    ("item_knn_recency", lambda: ItemKNN(history=None, recency_decay=0.8)),
    ("user_knn", lambda: UserKNN()),
    ("user_knn_recency", lambda: UserKNN(recency_decay=0.8)),
    ("content_tfidf", lambda: ContentTFIDF()),
    ("covisitation", lambda: CoVisitation()),
    ("covisitation_sessions", lambda: CoVisitation(window=None, session_gap=3600.0, decay=False)),
    ("ease", _registered("ease", "tfrec.models.baselines")),
    ("ease_recency", _registered("ease", "tfrec.models.baselines", l2=50.0, recency_decay=0.8)),
    ("als", _registered("als", "tfrec.models.baselines", factors=8, iterations=3)),
    ("mf", _registered("mf", "tfrec.models.mf", epochs=1, embedding_dim=8)),
    ("neumf", _registered("neumf", "tfrec.models.neumf", epochs=1, embedding_dim=8)),
    ("two_tower", _registered("two_tower", "tfrec.models.two_tower", epochs=1, embedding_dim=8)),
]
APPROXIMATE_REFIT = {"mf", "neumf", "two_tower"}


@pytest.fixture(scope="module", params=CONTRACT_MODELS, ids=[name for name, _ in CONTRACT_MODELS])
def contract(request, synthetic_data):
    name, factory = request.param
    return RecommenderContract(factory, synthetic_data.ratings, items=synthetic_data.items, users=synthetic_data.users,
                               exact_refit=name not in APPROXIMATE_REFIT, name=name)


@pytest.mark.parametrize("check", RecommenderContract.CHECKS)
def test_contract(contract, check):
    getattr(contract, check)()
