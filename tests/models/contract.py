"""The recommender contract as reusable checks (see ``tfrec/models/base.py`` and docs/architecture.md).

Every model in tfrec that can rank must pass these. Register a model by adding a
``(name, factory)`` entry to ``CONTRACT_MODELS`` in ``tests/models/test_contract.py``; the factory
takes no arguments and returns a new, unfitted model. To check a model elsewhere::

    from tests.models.contract import RecommenderContract   # or: from contract import ...
    RecommenderContract(lambda: MyModel(), train, items=items, users=users).run_all()

Each ``check_*`` method asserts one contract point and fails with a message naming the model and
what was expected. The fitted model is cached on the instance, so running all checks fits the
model twice (once more only for the determinism check).
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

import numpy as np
import pandas as pd
import pytest

from tfrec.errors import ConfigError, DataError

RECOMMEND_COLUMNS = ["user_id", "item_id", "score", "rank"]
SIMILAR_COLUMNS = ["item_id", "similar_item_id", "score", "rank"]
UNKNOWN_USER = "no-such-user-\u2603"
UNKNOWN_ITEM = "no-such-item-\u2603"


class RecommenderContract:
    """Contract checks for the models built by ``make_model``.

    Args:
      make_model: zero-argument callable returning a new unfitted recommender.
      train: ratings DataFrame (user_id, item_id, rating, timestamp) used for fitting.
      items, users: side tables passed to ``fit`` (None if the data has none).
      k: cut-off used by the checks (the catalog must have more than ``k`` items).
      exact_refit: the determinism check compares two fits exactly (scores bit-for-bit equal and
        identical recommendations); when False (float reductions on several CPU threads) scores
        must agree within ``rtol``/``atol`` instead.
      name: label used in failure messages.
    """

    CHECKS = (
        "check_recommend_before_fit_is_a_clear_error",
        "check_fit_returns_self",
        "check_recommend_frame",
        "check_exclude_seen",
        "check_seen_items_allowed_without_exclusion",
        "check_scores_match_score_users",
        "check_unknown_user_gets_fallback",
        "check_single_ids",
        "check_similar_items",
        "check_unknown_item_is_a_data_error",
        "check_bad_k_is_a_config_error",
        "check_deterministic_refit",
    )

    def __init__(self, make_model: Callable[[], object], train: pd.DataFrame, items: Optional[pd.DataFrame] = None,
                 users: Optional[pd.DataFrame] = None, *, k: int = 10, exact_refit: bool = True,
                 rtol: float = 1e-3, atol: float = 1e-5, name: Optional[str] = None):
        self.make_model = make_model
        self.train = train
        self.items = items
        self.users = users
        self.k = k
        self.exact_refit = exact_refit
        self.rtol = rtol
        self.atol = atol
        self.name = name
        self._fitted = None
        self._returned = None
        ids = train["user_id"].astype(str)
        self.seen = {u: set(g) for u, g in train.assign(item_id=train["item_id"].astype(str)).groupby(ids)["item_id"]}
        counts = ids.value_counts()
        # Probe users: the most and least active, plus one in the middle (all have > k unseen items).
        self.n_items = train["item_id"].astype(str).nunique()
        roomy = counts[self.n_items - counts > k]
        if len(roomy) < 3:
            raise ValueError("contract data: need at least 3 users with more than k unseen items")
        self.probe_users = [str(roomy.index[0]), str(roomy.index[len(roomy) // 2]), str(roomy.index[-1])]

    # -- helpers -------------------------------------------------------------------------------------
    def _label(self, model=None) -> str:
        return self.name or type(model if model is not None else self.model).__name__

    def _fit(self, model):
        kwargs = {}
        try:
            if "verbose" in inspect.signature(model.fit).parameters:
                kwargs["verbose"] = 0  # keep Keras progress bars out of the test log
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            pass
        return model.fit(self.train, items=self.items, users=self.users, **kwargs)

    @property
    def model(self):
        """The model fitted once and shared by the checks."""
        if self._fitted is None:
            model = self.make_model()
            self._returned = self._fit(model)
            self._fitted = model
        return self._fitted

    def run_all(self) -> None:
        for check in self.CHECKS:
            getattr(self, check)()

    def _check_ranked(self, frame: pd.DataFrame, key: str, other: str, keys, k: int) -> None:
        label = self._label()
        assert isinstance(frame, pd.DataFrame), f"{label}: expected a DataFrame, got {type(frame).__name__}"
        assert set(frame[key]) == set(keys), f"{label}: {key}s {sorted(set(frame[key]))} != requested {sorted(keys)}"
        for value in (*frame[key], *frame[other]):
            assert isinstance(value, str), f"{label}: ids must be str, got {value!r} ({type(value).__name__})"
        assert np.issubdtype(frame["score"].dtype, np.floating), f"{label}: score dtype {frame['score'].dtype}"
        assert np.isfinite(frame["score"].to_numpy()).all(), f"{label}: non-finite scores returned"
        for kid, group in frame.groupby(key, sort=False):
            assert len(group) == k, f"{label}: {key} {kid!r} got {len(group)} rows, expected {k}"
            assert group["rank"].tolist() == list(range(1, k + 1)), f"{label}: ranks for {kid!r} are not 1..{k}"
            scores = group["score"].to_numpy()
            assert (np.diff(scores) <= 0).all(), f"{label}: scores for {kid!r} increase: {scores}"
            assert group[other].is_unique, f"{label}: duplicate {other} for {kid!r}"

    # -- the contract --------------------------------------------------------------------------------
    def check_recommend_before_fit_is_a_clear_error(self) -> None:
        model = self.make_model()
        with pytest.raises(ConfigError, match="fit"):
            model.recommend(self.probe_users[:1], k=self.k)
        with pytest.raises(ConfigError, match="fit"):
            model.similar_items([str(self.train["item_id"].iloc[0])], k=self.k)

    def check_fit_returns_self(self) -> None:
        model = self.model
        assert self._returned is model, f"{self._label()}: fit returned {type(self._returned).__name__}, not self"

    def check_recommend_frame(self) -> None:
        recs = self.model.recommend(self.probe_users, k=self.k)
        assert list(recs.columns) == RECOMMEND_COLUMNS, f"{self._label()}: columns {list(recs.columns)}"
        assert len(recs) == self.k * len(self.probe_users)
        self._check_ranked(recs, "user_id", "item_id", self.probe_users, self.k)
        # Rows come grouped per user in the order asked for.
        order = list(dict.fromkeys(recs["user_id"]))
        assert order == self.probe_users, f"{self._label()}: users in order {order}, expected {self.probe_users}"
        catalog = set(map(str, self.model.catalog_))
        assert set(recs["item_id"]) <= catalog, f"{self._label()}: recommended items outside catalog_"

    def check_exclude_seen(self) -> None:
        users = sorted(self.seen)[:50]
        recs = self.model.recommend(users, k=self.k, exclude_seen=True)
        leaked = [(u, i) for u, i in zip(recs["user_id"], recs["item_id"]) if i in self.seen[u]]
        assert not leaked, f"{self._label()}: recommended training items with exclude_seen=True: {leaked[:5]}"

    def check_seen_items_allowed_without_exclusion(self) -> None:
        model = self.model
        user = self.probe_users[0]
        everything = model.recommend(user, k=len(model.catalog_), exclude_seen=False)
        label = self._label()
        assert len(everything) == len(model.catalog_), f"{label}: exclude_seen=False must rank the whole catalog"
        assert self.seen[user] <= set(everything["item_id"]), f"{label}: seen items missing with exclude_seen=False"
        self._check_ranked(everything, "user_id", "item_id", [user], len(model.catalog_))

    def check_scores_match_score_users(self) -> None:
        model = self.model
        scores = np.asarray(model.score_users(self.probe_users))
        assert scores.shape == (len(self.probe_users), len(model.catalog_)), f"{self._label()}: shape {scores.shape}"
        position = {str(it): j for j, it in enumerate(model.catalog_)}
        recs = model.recommend(self.probe_users, k=self.k)
        row = {u: r for r, u in enumerate(self.probe_users)}
        expected = [scores[row[u], position[i]] for u, i in zip(recs["user_id"], recs["item_id"])]
        np.testing.assert_allclose(recs["score"].to_numpy(), expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{self._label()}: recommend scores differ from score_users")
        # And recommend really returns the best unseen items.
        for u in self.probe_users:
            s = scores[row[u]].copy()
            s[[position[i] for i in self.seen[u] if i in position]] = -np.inf
            kth = np.sort(s)[::-1][self.k - 1]
            got = recs.loc[recs["user_id"] == u, "score"].to_numpy()
            assert got.min() >= kth - 1e-6 * max(1.0, abs(kth)), f"{self._label()}: {u!r} top-{self.k} is not the best"

    def check_unknown_user_gets_fallback(self) -> None:
        recs = self.model.recommend([UNKNOWN_USER], k=self.k)
        self._check_ranked(recs, "user_id", "item_id", [UNKNOWN_USER], self.k)
        mixed = self.model.recommend([self.probe_users[0], UNKNOWN_USER], k=self.k)
        assert len(mixed) == 2 * self.k

    def check_single_ids(self) -> None:
        model = self.model
        user = self.probe_users[0]
        as_str = model.recommend(user, k=self.k)
        assert as_str["user_id"].tolist() == [user] * self.k
        pd.testing.assert_frame_equal(as_str, model.recommend([user], k=self.k))
        numeric = next((u for u in self.seen if u.isdigit() and str(int(u)) == u), None)
        if numeric is not None:
            pd.testing.assert_frame_equal(model.recommend(int(numeric), k=self.k), model.recommend(numeric, k=self.k))
        item = str(model.catalog_[0])
        pd.testing.assert_frame_equal(model.similar_items(item, k=self.k), model.similar_items([item], k=self.k))

    def check_similar_items(self) -> None:
        model = self.model
        items = [str(model.catalog_[0]), str(model.catalog_[len(model.catalog_) // 2])]
        sims = model.similar_items(items, k=self.k)
        assert list(sims.columns) == SIMILAR_COLUMNS, f"{self._label()}: columns {list(sims.columns)}"
        assert len(sims) == self.k * len(items)
        self._check_ranked(sims, "item_id", "similar_item_id", items, self.k)
        assert not (sims["item_id"] == sims["similar_item_id"]).any(), f"{self._label()}: an item is its own neighbour"
        assert set(sims["similar_item_id"]) <= set(map(str, model.catalog_))

    def check_unknown_item_is_a_data_error(self) -> None:
        with pytest.raises(DataError, match="no-such-item"):
            self.model.similar_items([UNKNOWN_ITEM], k=self.k)

    def check_bad_k_is_a_config_error(self) -> None:
        item = str(self.model.catalog_[0])
        for k in (0, -1, 2.5, "3", True):
            with pytest.raises(ConfigError, match="k"):
                self.model.recommend(self.probe_users[:1], k=k)
            with pytest.raises(ConfigError, match="k"):
                self.model.similar_items([item], k=k)

    def check_deterministic_refit(self) -> None:
        first = self.model
        second = self.make_model()
        self._fit(second)
        assert list(map(str, first.catalog_)) == list(map(str, second.catalog_)), f"{self._label()}: catalogs differ"
        users = self.probe_users + [UNKNOWN_USER]
        a, b = np.asarray(first.score_users(users)), np.asarray(second.score_users(users))
        if self.exact_refit:
            np.testing.assert_array_equal(a, b, err_msg=f"{self._label()}: two fits with the same seed differ")
            pd.testing.assert_frame_equal(first.recommend(users, k=self.k), second.recommend(users, k=self.k))
            item = str(first.catalog_[0])
            pd.testing.assert_frame_equal(first.similar_items(item, k=self.k), second.similar_items(item, k=self.k))
        else:
            np.testing.assert_allclose(a, b, rtol=self.rtol, atol=self.atol,
                                       err_msg=f"{self._label()}: two fits with the same seed differ")
