"""Run as a script: the rating models under MirroredStrategy over 2 logical CPU devices.

``python _mirrored_rating.py`` splits this process's CPU into two logical devices (before
TensorFlow initialises, hence a fresh process) and fits MF, FM and NeuMF (rating and implicit
objectives) in the scope of one ``MirroredStrategy`` over both, on synthetic ratings whose training
part is not a multiple of the batch size. Prints JSON per model: the optimizer's class, the optimizer steps,
the training rows, the batch size, test RMSE (rating objectives) and the global mean's RMSE.
"""

import json
import sys

import tfrec  # noqa: F401  (legacy Keras before TensorFlow)
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from tfrec.data import random_split, synthetic_movielens  # noqa: E402
from tfrec.models.registry import create_model  # noqa: E402

data = synthetic_movielens(n_users=120, n_items=90, n_ratings=3002, seed=5)  # 2,402 training rows
train, test = random_split(data.ratings, 0.2, seed=0)
mean_rmse = float(np.sqrt(np.mean((test.rating - train.rating.mean()) ** 2)))
out = {}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for name, kwargs in (("mf", {}), ("fm", {}), ("neumf", {"objective": "rating"}),
                     ("neumf_implicit", {"objective": "implicit"})):
    with strategy.scope():
        model = create_model(name.split("_")[0], embedding_dim=8, epochs=3, batch_size=256,
                             seed=0, **kwargs)
        model.fit(train, items=data.items, users=data.users, verbose=0, validation_fraction=0.0)
    row = {"optimizer": type(model.optimizer).__name__, "steps": int(model.optimizer.iterations.numpy()),
           "rows": len(train), "batch_size": 256, "mean_rmse": mean_rmse}
    if kwargs.get("objective") != "implicit":
        pred = model.predict_ratings(test.user_id.to_numpy(), test.item_id.to_numpy())
        row["rmse"] = float(np.sqrt(np.mean((pred - test.rating.to_numpy()) ** 2)))
    out[name] = row
json.dump(out, sys.stdout)
