"""What rides along in ``assets.extra/``: the model card and TF Serving's warm-up requests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrec.utils.io import atomic_write_json

def write_extras(version_dir: Path, card: dict, warmup_inputs: dict, model_name: str) -> None:
    extra = Path(version_dir) / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    atomic_write_json(extra / "model_card.json", card)
    if warmup_inputs:
        write_warmup_requests(extra / "tf_serving_warmup_requests", model_name, warmup_inputs)


def write_warmup_requests(path: Path, model_name: str, requests: dict) -> Path:
    """TF Serving warm-up file: a TFRecord of PredictionLog(PredictRequest) per signature."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for key, value in inputs.items():
                if isinstance(value, np.ndarray):  # already typed (a schema's features)
                    tensor = tf.constant(value.astype(bytes) if value.dtype == object else value)
                elif key == "k":
                    tensor = tf.constant(value, dtype=tf.int32)
                elif key == "age":
                    tensor = tf.constant(value, dtype=tf.int64)
                else:
                    tensor = tf.constant(value, dtype=tf.string)
                req.inputs[key].CopyFrom(tf.make_tensor_proto(tensor))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
            writer.write(log.SerializeToString())
    return path


def read_model_card(version_dir) -> dict:
    return json.loads((Path(version_dir) / "assets.extra" / "model_card.json").read_text())
