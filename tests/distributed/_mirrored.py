"""Run as a script: MirroredStrategy over 2 logical CPU devices, from prepared shards and in memory.

``python _mirrored.py PREPARED DATA_DIR OUT HYPER_JSON`` splits this process's CPU into two logical
devices (before TensorFlow initialises, hence a fresh process), then trains the two-tower with
``strategy="mirrored"`` (a) from the PREPARED folder into the run folder OUT and (b) in memory on
the ratings it was prepared from (``ml-32m`` layout in DATA_DIR, same leave-last-out split).
Prints JSON: the prepared run's metrics and input plan, and the in-memory run's NDCG@10.
"""

import json
import sys

import tfrec  # noqa: F401  (legacy Keras before TensorFlow)
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

prepared, data_dir, out, hyper = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
result = tfrec.train("two_tower", prepared=prepared, strategy="mirrored", output=out, plots=False, tensorboard=False,
                     verbose=1, **hyper)
in_memory = tfrec.train("two_tower", "ml-32m", data_dir=data_dir, split="leave_last_out", strategy="mirrored",
                        verbose=0, validation_fraction=0.0, **hyper)
json.dump({"metrics": result.metrics, "input_plan": result.config["input_plan"],
           "in_memory": in_memory.metrics["full"]["ndcg@10"]}, sys.stdout)
