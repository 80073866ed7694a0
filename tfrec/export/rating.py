"""The rating export: ``serving_default(user_id, item_id) -> rating``."""

from __future__ import annotations

import tensorflow as tf

class RatingModule(tf.Module):
    """``serving_default``: raw ``user_id``, ``item_id`` -> ``rating`` (features looked up inside)."""

    def __init__(self, model):
        super().__init__(name="tfrec_rating")
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="item_id")])
    def serving_default(self, user_id, item_id):
        return {"rating": tf.cast(self.model.call_ids(user_id, item_id), tf.float32)}


# ------------------------------------------------------------------------------------------------ index
