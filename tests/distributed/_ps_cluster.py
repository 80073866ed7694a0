"""Run as a script: an in-process parameter-server cluster (2 ps, 2 workers) and its chief.

``python _ps_cluster.py OUT PORT0 ... PORT4 [hyperparameter JSON]`` starts gRPC servers for two ps and two worker
tasks in this process (TensorFlow's documented in-process cluster), points ``TF_CONFIG`` at them
with this process as the chief, and trains with ``tfrec.train(..., strategy="parameter_server")``
into the run folder OUT. Prints JSON: the test metrics and which variables were sharded.
"""

import json
import os
import sys

out, ports = sys.argv[1], [int(p) for p in sys.argv[2:7]]
hyper = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
addr = [f"127.0.0.1:{p}" for p in ports]
cluster = {"chief": [addr[0]], "worker": addr[1:3], "ps": addr[3:5]}
os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})
os.environ["GRPC_FAIL_FAST"] = "use_caller"

import tfrec  # noqa: E402  (legacy Keras before TensorFlow)
import tensorflow as tf  # noqa: E402

spec = tf.train.ClusterSpec(cluster)
# In-process servers share this process's inter-op thread pool; with fewer cores than tasks the
# workers deadlock waiting for threads (TensorFlow's in-process cluster recipe sets the same).
config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=8)
servers = [tf.distribute.Server(spec, job_name=job, task_index=i, config=config, protocol="grpc", start=True)
           for job in ("worker", "ps") for i in range(2)]

sharded = {}


def spy(model):
    """Record which of the model's variables are sharded over the ps tasks (before the copy)."""
    import re

    for v in model.variables:
        match = re.match(r"(.*)/part_(\d+)", v.name)
        if match:
            sharded[match.group(1)] = max(sharded.get(match.group(1), 0), int(match.group(2)) + 1)


from tfrec.training import distribute  # noqa: E402

original_copy = distribute.local_copy


def recording_copy(model, *args, **kwargs):
    spy(model)
    return original_copy(model, *args, **kwargs)


import tfrec.training.trainer as trainer  # noqa: E402
from tfrec.models import distributed_input, keras_fit  # noqa: E402

creators = []
original_input = distributed_input.file_sharded_input
original_fit_input = distributed_input.distributed_fit_input


def recording_input(*args, **kwargs):
    creators.append(original_input(*args, **kwargs))
    return creators[-1]


def recording_fit_input(*args, **kwargs):
    out = original_fit_input(*args, **kwargs)
    creators.append(out[0])
    return out


distributed_input.file_sharded_input = recording_input
keras_fit.distributed_fit_input = recording_fit_input

trainer.local_copy = recording_copy
result = tfrec.train("two_tower", "synthetic", split="leave_last_out", strategy="parameter_server", output=out,
                     connect_timeout=60, **{"verbose": 0, **hyper})
draws = int(creators[0].draws.numpy()) if creators else None  # worker datasets made
json.dump({"metrics": {k: v for k, v in result.metrics.items() if k in ("full", "sampled_100")},
           "sharded": sharded, "draws": draws}, sys.stdout)
sys.stdout.flush()
os._exit(0)  # the in-process servers have no clean shutdown
