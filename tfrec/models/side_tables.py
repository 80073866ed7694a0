"""Per-id side tables held inside a Keras model: raw ids -> side features, gathered in-graph.

User -> gender/age/occupation/zip and item -> genres/year live in non-trainable variables, so a
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

    Reads ``uses_side_features`` and ``vocabularies`` of the model; ``side_tables`` maps a feature
    name to a variable indexed by the id's vocabulary index (index 0: unknown id -> neutral values).
    """

    @property
    def has_user_features(self) -> bool:
        return bool(self.uses_side_features and self.vocabularies and F.GENDER in self.vocabularies)

    @property
    def has_item_features(self) -> bool:
        return bool(self.uses_side_features and self.vocabularies and F.GENRES in self.vocabularies)

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

        if self.has_user_features:
            for name in F.USER_FEATURES:
                tables[name] = var(name, [n_users], tf.int64 if name == F.AGE else tf.string)
        if self.has_item_features:
            tables[F.GENRES] = var(F.GENRES, [n_items, F.MAX_GENRES], tf.string)
            tables[F.YEAR] = var(F.YEAR, [n_items], tf.int64)
        self.side_tables = tables
        if tables:
            self.side_user_lookup = string_lookup(self.vocabularies[F.USER_ID], "side_user_lookup")
            self.side_item_lookup = string_lookup(self.vocabularies[F.ITEM_ID], "side_item_lookup")

    def _set_side_tables(self, items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> None:
        """Fill the side tables from the item/user DataFrames (rows in vocabulary order)."""
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
        if F.GENDER in side:
            u = self._user_index(user_id)
            for name in F.USER_FEATURES:
                feats[name] = tf.gather(side[name], u)
        if F.GENRES in side:
            i = self._item_index(item_id)
            for name in F.ITEM_FEATURES:
                feats[name] = tf.gather(side[name], i)
        return feats
