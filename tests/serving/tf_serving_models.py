"""Small SavedModels that behave as TensorFlow Serving's test models, built at test time.

NOTICE: the behaviour these models reproduce (and the test cases in ``tf_serving_cases.py``) is
specified by TensorFlow Serving's own tests (https://github.com/tensorflow/serving, Apache License
2.0): the ``half_plus_two`` / ``half_plus_three`` SavedModels of
``tensorflow_serving/servables/tensorflow/testdata``. Nothing here is copied from that repository:
this is an independent builder of graphs with the same signatures and arithmetic.

* ``half_plus_two`` (TF1 graph): a ``tf_example`` string placeholder parsed with ParseExample into
  ``x`` (required) and ``x2`` (default 0); ``y = 0.5 x + 2``, ``y2 = 0.5 x + 3``, ``y3 = 0.5 x2 + 3``.
  Signatures: ``serving_default`` (predict, x -> y), ``regress_x_to_y``, ``regress_x_to_y2``,
  ``regress_x2_to_y3`` (regress), ``classify_x_to_y`` (classify, output ``scores``).
* ``half_plus_three``: the same graph with ``y = 0.5 x + 3``.
* ``half_plus_two_tf2``: a ``tf.Module`` with the same signature names as ``tf.function``s; its
  predict signature is declared for shape ``[1]`` and has a default argument.
* ``echo``: identity signatures over int32/string/float/double placeholders, on which the request
  parsing cases of ``util/json_tensor_test.cc`` replay over REST (the answer shows the tensor built).
"""

from __future__ import annotations

from pathlib import Path

import tfrec  # noqa: F401  (first: Keras 2 behind tf.keras)
import tensorflow as tf

REGRESS = "tensorflow/serving/regress"
CLASSIFY = "tensorflow/serving/classify"
PREDICT = "tensorflow/serving/predict"


def _tf1_graph_model(export_dir: Path, offset: float) -> None:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        half = v1.get_variable("a", initializer=0.5)
        plus = v1.get_variable("b", initializer=float(offset))
        plus3 = v1.get_variable("c", initializer=3.0)
        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        features = v1.io.parse_example(serialized, {
            "x": v1.io.FixedLenFeature([1], tf.float32),
            "x2": v1.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
        })
        x = tf.identity(features["x"], name="x")
        x2 = tf.identity(features["x2"], name="x2")
        y = tf.identity(half * x + plus, name="y")
        y2 = tf.identity(half * x + plus3, name="y2")
        y3 = tf.identity(half * x2 + plus3, name="y3")
        info = v1.saved_model.utils.build_tensor_info

        def sig(inputs, outputs, method):
            return v1.saved_model.signature_def_utils.build_signature_def(
                {k: info(t) for k, t in inputs.items()}, {k: info(t) for k, t in outputs.items()}, method)

        signatures = {
            "serving_default": sig({"x": x}, {"y": y}, PREDICT),
            "regress_x_to_y": sig({"inputs": serialized}, {"outputs": y}, REGRESS),
            "regress_x_to_y2": sig({"inputs": serialized}, {"outputs": y2}, REGRESS),
            "regress_x2_to_y3": sig({"inputs": x2}, {"outputs": y3}, REGRESS),
            "classify_x_to_y": sig({"inputs": serialized}, {"scores": y}, CLASSIFY),
        }
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(export_dir))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map=signatures)
        builder.save()


class _HalfPlusTwo(tf.Module):
    def __init__(self):
        super().__init__()
        self.a = tf.Variable(0.5)
        self.b = tf.Variable(2.0)
        self.c = tf.Variable(3.0)

    @staticmethod
    def _x(serialized, key="x"):
        spec = {"x": tf.io.FixedLenFeature([1], tf.float32),
                "x2": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
        return tf.io.parse_example(serialized, spec)[key]

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def predict(self, x=tf.constant([0.0])):
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy(self, inputs):
        return {"outputs": self.a * self._x(inputs) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy2(self, inputs):
        return {"outputs": self.a * self._x(inputs) + self.c}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="inputs")])
    def regress_x2y3(self, inputs):
        return {"outputs": self.a * inputs + self.c}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_xy(self, inputs):
        return {"scores": self.a * self._x(inputs) + self.b}


def _tf2_model(export_dir: Path) -> None:
    m = _HalfPlusTwo()
    tf.saved_model.save(m, str(export_dir), signatures={
        "serving_default": m.predict, "regress_x_to_y": m.regress_xy, "regress_x_to_y2": m.regress_xy2,
        "regress_x2_to_y3": m.regress_x2y3, "classify_x_to_y": m.classify_xy})


def _echo_model(export_dir: Path) -> None:
    """Identity signatures over placeholders of unknown shape: the answer shows the tensor a request
    became, so json_tensor_test.cc's request -> TensorProto cases can be replayed over REST."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        ph = {name: v1.placeholder(dtype, shape=None, name=name) for name, dtype in [
            ("default", tf.string), ("int_tensor", tf.int32), ("str_tensor", tf.string),
            ("float_tensor", tf.float32), ("dbl_tensor", tf.float64), ("bin_tensor", tf.string)]}
        info = v1.saved_model.utils.build_tensor_info

        def echo(inputs, renamed=None):
            renamed = renamed or {}
            outputs = {renamed.get(n, n): info(tf.identity(ph[n])) for n in inputs}
            return v1.saved_model.signature_def_utils.build_signature_def(
                {n: info(ph[n]) for n in inputs}, outputs, PREDICT)

        signatures = {
            "serving_default": echo(["default"]),
            "str_bytes": echo(["default"], {"default": "default_bytes"}),
            "int": echo(["int_tensor"]),
            "float": echo(["float_tensor"]),
            "multi": echo(["int_tensor", "str_tensor", "float_tensor", "dbl_tensor"]),
            "columns": echo(["int_tensor", "str_tensor", "bin_tensor"], {"bin_tensor": "bin_tensor_bytes"}),
        }
        builder = v1.saved_model.Builder(str(export_dir))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map=signatures)
        builder.save()


def build_all(root: Path) -> dict:
    """Write the test models under ``root``; returns ``{model name: base path}``.

    ``saved_model_half_plus_two_2_versions`` holds versions 123 and 124 (same graph), the others
    version 123 (folder ``00000123``, as TF Serving's test data names it).
    """
    root = Path(root)
    paths = {
        "saved_model_half_plus_two_cpu": root / "saved_model_half_plus_two_cpu",
        "saved_model_half_plus_two_2_versions": root / "saved_model_half_plus_two_2_versions",
        "saved_model_half_plus_three": root / "saved_model_half_plus_three",
        "saved_model_half_plus_two_tf2_cpu": root / "saved_model_half_plus_two_tf2_cpu",
        "echo": root / "echo",
    }
    _tf1_graph_model(paths["saved_model_half_plus_two_cpu"] / "00000123", 2.0)
    _tf1_graph_model(paths["saved_model_half_plus_two_2_versions"] / "00000123", 2.0)
    _tf1_graph_model(paths["saved_model_half_plus_two_2_versions"] / "00000124", 2.0)
    _tf1_graph_model(paths["saved_model_half_plus_three"] / "00000123", 3.0)
    _tf2_model(paths["saved_model_half_plus_two_tf2_cpu"] / "00000123")
    _echo_model(paths["echo"] / "1")
    return paths
