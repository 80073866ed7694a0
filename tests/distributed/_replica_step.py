"""Run as a script: one training step of TwoTower on 1 replica with batch B vs 2 replicas of B/2.

Prints JSON: how far the step moved the weights and the largest absolute weight difference
between the two runs. Needs a fresh process: the
logical CPU devices must be configured before TensorFlow initialises.
"""

import json
import sys

import tfrec  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from tfrec.data import synthetic_movielens  # noqa: E402
from tfrec.models.two_tower import TwoTower  # noqa: E402

BATCH = 64
data = synthetic_movielens(n_users=80, n_items=50, n_ratings=1500, seed=3)
# No randomness in the step (no id dropout; the mean encoder, as the attention default's dropout
# draws differ between one process and two replicas), so one step must match to float rounding.
settings = dict(embedding_dim=8, layer_sizes=[8], ensemble_size=1, id_dropout=0.0, history_length=4, epochs=1,
                batch_size=BATCH, seed=0, history_encoder="mean")
base = TwoTower(**settings)
base._prepare(data.ratings, data.items, data.users)
base._build_all_variables()
config = base.get_config()
batch = next(iter(base._dataset(data.ratings, data.items, data.users, batch_size=BATCH, pipeline="tensor",
                                shuffle=True, seed=0)))
one = tf.data.Dataset.from_tensors(batch)


def stepped(strategy, task=None):
    with strategy.scope():
        model = TwoTower.from_config(config)
        model._prepare(data.ratings, data.items, data.users)
        if task is not None:
            model.task = task
        model._build_all_variables()
        model.set_weights(base.get_weights())
        model.compile(optimizer=tf.keras.optimizers.SGD(0.05))
    model.fit(one, epochs=1, verbose=0)
    return model.get_weights()


single = stepped(tf.distribute.get_strategy())
mirrored = stepped(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))


def largest_gap(xs, ys):
    return max(float(np.abs(a - b).max()) for a, b in zip(xs, ys) if np.issubdtype(np.asarray(a).dtype, np.floating))


moved = largest_gap(single, base.get_weights())
diff = largest_gap(single, mirrored)
json.dump({"moved": moved, "diff": diff}, sys.stdout)
