"""Per-id side tables held inside a Keras model: raw ids -> side features, gathered in-graph.

User -> gender/age/occupation/zip and item -> genres/year (MovieLens), or user/item -> the
features a schema.json names (your own data, described by the model's ``side_features`` specs),
live in non-trainable variables, so a
model computes its output from raw string ids alone (what an exported ``serving_default`` calls),
and ``save_weights``/``load_weights`` and SavedModels carry them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data import features as F
from tfrec.errors import ConfigError
from tfrec.models.layers import string_lookup


def local_string_variable(init, name: str) -> tf.Variable:
    """A non-trainable string variable; under ``MultiWorkerMirroredStrategy`` an ordinary local one.

    That strategy broadcasts every variable's initial value from the chief with collective ops,
    which have no string kernel. Side tables are filled from the same data on every worker and
    never trained, so each worker keeps a plain copy instead of a mirrored one.
    """
    if not (tf.distribute.has_strategy()
            and isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)):
        return tf.Variable(init, trainable=False, name=name)

    def plain(next_creator, **kwargs):
        del next_creator  # skip the strategy's creator
        from tensorflow.python.ops import resource_variable_ops  # the default creator's own class

        return resource_variable_ops.ResourceVariable(initial_value=kwargs["initial_value"], trainable=False,
                                                      name=kwargs.get("name"))

    with tf.variable_creator_scope(plain):
        return tf.Variable(init, trainable=False, name=name)


class SideTablesMixin:
    """Side tables for a :class:`~tfrec.models.keras_base.KerasRecommender` (mixed in before it).

    Reads ``uses_side_features``, ``vocabularies`` and ``side_features`` of the model;
    ``side_tables`` maps a feature name to a variable indexed by the id's vocabulary index (index 0:
    unknown id -> neutral values: ``""``, NaN for numeric features, all-padding lists).
    """

    @property
    def side_features(self) -> Optional[dict]:
        """Fitted specs of a schema.json dataset's side features (None: MovieLens's named features)."""
        box = getattr(self, "_side_features", None)
        return box.value if box is not None else None

    def _side_specs(self, side: Optional[str] = None) -> dict:
        """The model's schema feature specs (of one ``side``, "user" or "item"), if it uses them."""
        specs = self.side_features if self.uses_side_features else None
        return {k: v for k, v in (specs or {}).items() if side is None or v["side"] == side}

    @property
    def has_user_features(self) -> bool:
        if self.side_features is not None:
            return bool(self._side_specs("user"))
        return bool(self.uses_side_features and self.vocabularies and F.GENDER in self.vocabularies)

    @property
    def has_item_features(self) -> bool:
        if self.side_features is not None:
            return bool(self._side_specs("item"))
        return bool(self.uses_side_features and self.vocabularies and F.GENRES in self.vocabularies)

    @property
    def user_feature_names(self) -> list:
        """The user side features the model reads (what ``recommend_new_user`` takes)."""
        if self.side_features is not None:
            return list(self._side_specs("user"))
        return list(F.USER_FEATURES) if self.has_user_features else []

    @property
    def item_feature_names(self) -> list:
        if self.side_features is not None:
            return list(self._side_specs("item"))
        return list(F.ITEM_FEATURES) if self.has_item_features else []

    @property
    def _side(self) -> dict:
        """Feature name -> per-vocabulary-index values (index 0: unknown id -> neutral values)."""
        return self.side_tables

    def _build_side_tables(self) -> None:
        # Variables (not constants) so save_weights/load_weights and SavedModels carry them; their
        # shapes follow from the vocabularies, so from_config can create them before loading.
        tables = {}
        n_users = len(self.vocabularies[F.USER_ID]) + 1
        n_items = len(self.vocabularies[F.ITEM_ID]) + 1

        def var(name, shape, dtype):
            init = tf.fill(shape, "") if dtype == tf.string else tf.zeros(shape, dtype)
            if dtype == tf.string:
                return local_string_variable(init, name=f"side_{name}")
            return tf.Variable(init, trainable=False, name=f"side_{name}")

        if self.side_features is not None:
            for name, spec in self._side_specs().items():
                n = n_users if spec["side"] == "user" else n_items
                if spec["type"] == "numeric":
                    tables[name] = var(name, [n], tf.float32)
                else:
                    tables[name] = var(name, [n, spec["length"]] if "length" in spec else [n], tf.string)
        elif self.has_user_features:
            for name in F.USER_FEATURES:
                tables[name] = var(name, [n_users], tf.int64 if name == F.AGE else tf.string)
        if self.has_item_features and self.side_features is None:
            tables[F.GENRES] = var(F.GENRES, [n_items, F.MAX_GENRES], tf.string)
            tables[F.YEAR] = var(F.YEAR, [n_items], tf.int64)
        self.side_tables = tables
        if tables:
            self.side_user_lookup = string_lookup(self.vocabularies[F.USER_ID], "side_user_lookup")
            self.side_item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "side_item_lookup")

    def _set_side_tables(self, items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> None:
        """Fill the side tables from the item/user DataFrames (rows in vocabulary order)."""
        if self.side_features is not None:
            return self._set_schema_side_tables(items, users)
        if self.has_user_features:
            if users is None:
                raise ConfigError(f"{type(self).__name__} was built with user features (its vocabularies include "
                                  "'gender'): pass users= to fit")
            table = F.user_feature_table(users).reindex(self.vocabularies[F.USER_ID])
            self.side_tables[F.AGE].assign(np.concatenate([[0], table[F.AGE].fillna(0).to_numpy(np.int64)]))
            for name in (F.GENDER, F.OCCUPATION, F.ZIP):
                self.side_tables[name].assign([F.PAD] + table[name].fillna(F.PAD).astype(str).tolist())
        if self.has_item_features:
            if items is None:
                raise ConfigError(f"{type(self).__name__} was built with item features (its vocabularies include "
                                  "'genres'): pass items= to fit")
            table = F.item_feature_table(items).reindex(self.vocabularies[F.ITEM_ID])
            empty = [F.PAD] * F.MAX_GENRES
            genres = [empty] + [g if isinstance(g, list) else empty for g in table[F.GENRES]]
            self.side_tables[F.GENRES].assign(np.asarray(genres, dtype=object).astype(bytes))
            self.side_tables[F.YEAR].assign(np.concatenate([[0], table[F.YEAR].fillna(0).to_numpy(np.int64)]))

    def _set_schema_side_tables(self, items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> None:
        for side, table, key in (("user", users, F.USER_ID), ("item", items, F.ITEM_ID)):
            specs = self._side_specs(side)
            if not specs:
                continue
            if table is None:
                raise ConfigError(f"{type(self).__name__} was built with {side} features ({', '.join(specs)}): pass "
                                  f"{side}s= to fit")
            values = F.side_values(table, key, specs, side, np.asarray(self.vocabularies[key], dtype=object))
            for name, col in values.items():
                neutral = np.full((1,) + col.shape[1:], np.nan if col.dtype != object else F.PAD, dtype=col.dtype)
                full = np.concatenate([neutral, col])  # row 0: the unknown id
                self.side_tables[name].assign(full.astype(bytes) if full.dtype == object else full)

    def _user_index(self, user_id):
        return self.side_user_lookup(user_id)

    def _item_index(self, item_id):
        return self.side_item_lookup(item_id)

    def features_from_ids(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict:
        """The model's feature dict for raw ids (tf.string [batch]), side features gathered in-graph.

        Unknown ids get the neutral values the pipelines use for rows missing from a side table
        (``""``, age 0, year 0, all-padding genres).
        """
        feats = {F.USER_ID: user_id, F.ITEM_ID: item_id}
        side = self.side_tables
        if self.side_features is not None:
            u = self._user_index(user_id) if self.has_user_features else None
            i = self._item_index(item_id) if self.has_item_features else None
            for name, spec in self._side_specs().items():
                feats[name] = tf.gather(side[name], u if spec["side"] == "user" else i)
            return feats
        if F.GENDER in side:
            u = self._user_index(user_id)
            for name in F.USER_FEATURES:
                feats[name] = tf.gather(side[name], u)
        if F.GENRES in side:
            i = self._item_index(item_id)
            for name in F.ITEM_FEATURES:
                feats[name] = tf.gather(side[name], i)
        return feats
