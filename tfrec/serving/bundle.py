"""A loaded SavedModel run the way TF Serving's ``SavedModelBundle`` runs it.

TF Serving loads a SavedModel into a TF1 session and answers a request by feeding the signature's
input tensors and fetching its output tensors *by name* (``Session::Run``): whatever the graph
accepts is accepted, with no TF2 ``input_signature`` check on top. TF1 graphs (``ParseExample``
pipelines, ``classify``/``regress`` signatures) and TF2 exports (whose signatures are
``StatefulPartitionedCall`` nodes in the same MetaGraph) load the same way.

Each (feeds, fetches) combination becomes a C++ ``Session::MakeCallable`` callable once and is
reused: it runs without re-validating feeds against static shapes, as TF Serving's session does.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Optional

import numpy as np


def _import_scann() -> None:
    try:  # ScaNN exports need its ops registered; brute-force exports do not.
        import scann  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


_NODE_TRACE = re.compile(r"\s*\[\[\{\{node [^]]*\]\]\s*$|\s*\[\[[^]]*\]\]\s*$")


def clean_graph_error(message: str) -> str:
    """A TF runtime error text without node traces, "Graph execution error:" headers or call stacks.

    An assertion inside the graph (``tf.debugging.assert_*(..., message=...)``) keeps its message and
    the values it printed, which name the input at fault (e.g. ``k must be <= k_max (100)``).
    """
    text = message.replace("Graph execution error:", "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    kept = []
    for ln in lines:
        if ln.lstrip().startswith(("Detected at node", "Defined at", "File \"", "Stack trace")):
            continue
        ln = _NODE_TRACE.sub("", ln).rstrip()
        if ln.strip():
            kept.append(ln.strip())
    text = kept[0] if kept else message.strip()
    m = re.search(r"assertion failed: \[(.*?)\]", text)
    if m:  # "assertion failed: [k must be >= 1] [Condition x >= y did not hold ...] [x (k:0) = ] [0] ..."
        got = re.search(r"\[x \([^)]*\) = \] \[([^\]]*)\]", text)
        tail = f" (got {got.group(1)})" if got else ""
        # The message is printed as a string tensor: C-escaped (\\' for a quote); show it as written.
        return f"{m.group(1)}{tail}".replace("\\'", "'").replace('\\"', '"')
    return text


class SavedModelBundle:
    """One SavedModel loaded into its own graph and session.

    Args:
      path: the version folder holding ``saved_model.pb``.
      intra_op_threads, inter_op_threads: the session's thread pools (0: TensorFlow's choice).

    Attributes:
      signature_defs: ``{name: SignatureDef proto}`` of the ``serve`` MetaGraph (method names,
        TensorInfo names/dtypes/shapes and defaults, as TF Serving reads them).
    """

    def __init__(self, path: Path, *, intra_op_threads: int = 0, inter_op_threads: int = 0,
                 tags: tuple = ("serve",)):
        import tensorflow as tf

        _import_scann()
        self.path = Path(path)
        self.graph = tf.Graph()
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=int(intra_op_threads),
                                          inter_op_parallelism_threads=int(inter_op_threads),
                                          allow_soft_placement=True)
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(self.session, list(tags), str(self.path))
        self.signature_defs = dict(meta.signature_def)
        self._callables: dict = {}
        self._lock = threading.Lock()

    def _callable(self, feeds: tuple, fetches: tuple):
        fn = self._callables.get((feeds, fetches))
        if fn is None:
            with self._lock:
                fn = self._callables.get((feeds, fetches))
                if fn is None:
                    from tensorflow.core.protobuf import config_pb2

                    # The C++ Session::MakeCallable (tf.Session.make_callable would check feeds
                    # against the tensors' static shapes in Python first).
                    options = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
                    fn = self.session._make_callable_from_options(options)  # noqa: SLF001
                    self._callables[(feeds, fetches)] = fn
        return fn

    def run(self, feeds: dict, fetches: list) -> list:
        """``Session::Run``: ``feeds`` maps tensor names to arrays; returns the fetched arrays in order."""
        names = tuple(sorted(feeds))
        fn = self._callable(names, tuple(fetches))
        return fn(*[feeds[n] for n in names])

    def close(self) -> None:
        self.session.close()


def tensor_info_spec(info):
    """A ``tf.TensorSpec`` for a TensorInfo (unknown rank -> shape None)."""
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(info.dtype)
    if info.tensor_shape.unknown_rank:
        shape = None
    else:
        shape = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]
    return tf.TensorSpec(shape, dtype, info.name)


def default_value(tensor_proto) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(tensor_proto)


def bundle_function(bundle: SavedModelBundle, sig_def):
    """``fn(**{input alias: array}) -> {output alias: array}`` running ``sig_def`` in ``bundle``.

    Missing inputs take the signature's defaults (TF2 functions with default arguments), as TF
    Serving's ``GetInputValues`` does; ``_outputs`` (a list of aliases) restricts the fetches.
    """
    in_names = {alias: info.name for alias, info in sig_def.inputs.items()}
    out_names = {alias: info.name for alias, info in sig_def.outputs.items()}
    defaults = {alias: default_value(t) for alias, t in sig_def.defaults.items()}

    def fn(_outputs: Optional[list] = None, **arrays):
        feeds = {}
        for alias, name in in_names.items():
            if alias in arrays:
                feeds[name] = arrays[alias]
            elif alias in defaults:
                feeds[name] = defaults[alias]
        aliases = list(_outputs) if _outputs else sorted(out_names)
        values = bundle.run(feeds, [out_names[a] for a in aliases])
        return dict(zip(aliases, values))

    return fn
