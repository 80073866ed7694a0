"""Content-based recommendation: TF-IDF over item titles and genres."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from tfrec.errors import ConfigError, DataError
from tfrec.models.baselines.common import Baseline, check_bool, check_float, check_int
from tfrec.models.baselines.sparse import as_dense, recent_matrix


class ContentTFIDF(Baseline):
    """Content-based recommender: scikit-learn TF-IDF over each item's genres and title words.

    Each item becomes a document of genre tokens (``genre_<name>``, repeated ``genre_weight``
    times so genres outweigh incidental title words) plus its title words (the "(1995)" year
    suffix dropped); rows are TF-IDF vectors, L2-normalised. A user's profile is the mean of the
    rows of their ``history`` most recent training items (None = all), weighted by rating
    (``rating_weighted``; ratings centred on the mean over those items, plus ``rating_offset``, so
    disliked items count against similar items), and
    ``score(u, i) = cos(profile_u, tfidf_i)``. ``similar_items`` is the TF-IDF cosine.

    Needs ``items`` (columns ``item_id``, ``title``, ``genres`` as a list of strings; or a
    schema.json dataset's items, whose categorical / multi_categorical values play the genres'
    part and whose text features the title's) in ``fit``;
    catalog items missing from that table get an empty document (score 0).

    Args:
      genre_weight: repetitions of the genre tokens (0 = title words only).
      use_title: include title words.
      min_df: minimum number of items a token must appear in.
      rating_weighted: weight items by (centred) rating; False = plain mean.
      rating_offset: added to the centred ratings (0 = pure centring).
      history: build the profile from the user's latest ``history`` items (None = all).

    Example:
      >>> ContentTFIDF().fit(train, items=data.items).similar_items("1", k=5)   # doctest: +SKIP
    """

    _param_names = ("genre_weight", "use_title", "min_df", "rating_weighted", "rating_offset", "history")
    _state_names = ("_tfidf", "_profiles")

    def __init__(self, genre_weight: int = 3, use_title: bool = True, min_df: int = 2,
                 rating_weighted: bool = True, rating_offset: float = 0.5, history: Optional[int] = 10):
        self.genre_weight = check_int("genre_weight", genre_weight, 0)
        self.use_title = check_bool("use_title", use_title)
        self.min_df = check_int("min_df", min_df, 1)
        self.rating_weighted = check_bool("rating_weighted", rating_weighted)
        self.rating_offset = check_float("rating_offset", rating_offset)
        self.history = check_int("history", history, 1, allow_none=True)
        if self.genre_weight == 0 and not self.use_title:
            raise ConfigError("ContentTFIDF: genre_weight=0 with use_title=False leaves no content to compare")

    def _documents(self, items: pd.DataFrame) -> list:
        if not isinstance(items, pd.DataFrame):
            raise DataError(f"ContentTFIDF needs the items table: fit(train, items=...), got {type(items).__name__}")
        from tfrec.data.features import feature_types

        if feature_types(items) is not None:
            return self._schema_documents(items, feature_types(items))
        missing = [c for c in ("item_id", "title", "genres") if c not in items.columns]
        if missing:
            raise DataError(f"items: missing column(s) {missing}; ContentTFIDF needs item_id, title, genres")
        table = pd.DataFrame({"title": items["title"].to_numpy(), "genres": items["genres"].to_numpy()},
                             index=items["item_id"].astype(str).to_numpy())
        table = table[~table.index.duplicated()].reindex(self.catalog_)
        docs = []
        for title, genres in zip(table["title"], table["genres"]):
            if not isinstance(genres, (list, tuple, np.ndarray)):
                genres = [] if genres is None or (isinstance(genres, float) and np.isnan(genres)) else \
                    str(genres).split("|")
            tokens = ["genre_" + "".join(ch if ch.isalnum() else "_" for ch in str(g).lower())
                      for g in genres if str(g) and str(g) != "(no genres listed)"]
            words = str(title).rsplit("(", 1)[0] if isinstance(title, str) and self.use_title else ""
            docs.append(" ".join(tokens * self.genre_weight) + " " + words)
        return docs

    def _schema_documents(self, items: pd.DataFrame, types: dict) -> list:
        """Documents of a schema.json dataset's items: each categorical / multi_categorical value
        as a ``name_value`` token (repeated ``genre_weight`` times, like genres) plus the words of
        its text features; numeric features are left out."""
        table = items.set_index(items["item_id"].astype(str).to_numpy(dtype=object))
        table = table[~table.index.duplicated()].reindex(self.catalog_)
        docs = []
        for _, row in table.iterrows():
            tokens, words = [], []
            for name, kind in types.items():
                value = row[name]
                if kind in ("categorical", "multi_categorical"):
                    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
                    tokens += ["".join(ch if ch.isalnum() else "_" for ch in f"{name}_{v}".lower())
                               for v in values if isinstance(v, str) and v]
                elif kind == "text" and self.use_title and isinstance(value, str):
                    words.append(value)
            docs.append(" ".join(tokens * self.genre_weight) + " " + " ".join(words))
        return docs

    def _fit(self, train, items, users) -> None:
        if items is None:
            raise DataError("ContentTFIDF needs the items table (titles and genres): fit(train, items=...)")
        docs = self._documents(items)
        n_docs = sum(bool(d.strip()) for d in docs)
        vec = TfidfVectorizer(min_df=min(self.min_df, max(n_docs, 1)), token_pattern=r"(?u)\b\w\w+\b")
        try:
            self._tfidf = normalize(vec.fit_transform(docs).tocsr())
        except ValueError as exc:  # empty vocabulary
            raise DataError(f"items: no usable title/genre tokens for the training catalog ({exc})") from None
        weighted = self.rating_weighted and "rating" in train.columns
        m = self._interaction_matrix(train, weighted=weighted)
        if self.history is not None:
            rows, cols = self._positions(train)
            m = m.multiply(recent_matrix(train, rows, cols, m.shape, self.history)).tocsr()
        if weighted:
            # Centre each user's ratings so a 1-star rating pushes the profile away from that item.
            counts = np.diff(m.indptr)
            means = np.asarray(m.sum(axis=1)).ravel() / np.maximum(counts, 1)
            m.data = m.data - np.repeat(means, counts) + self.rating_offset
        self._profiles = normalize(m @ self._tfidf)

    def _score_users(self, user_ids) -> np.ndarray:
        return as_dense(self._profiles[self._rows(user_ids)] @ self._tfidf.T)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return as_dense(self._tfidf[item_positions] @ self._tfidf.T)
