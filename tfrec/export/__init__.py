"""Export: versioned SavedModels under ``export/<name>/<version>/`` that any TF program can load.

See :mod:`tfrec.export.savedmodel` for the signatures. Modules: ``savedmodel`` (``export_model``),
``retrieval`` and ``rating`` (what each kind of export holds), ``ann_index`` (the ScaNN index and
its parameter choice), ``model_card`` (model card, warm-up requests), ``versions`` (version folders).
Importing this package imports TensorFlow.
"""

from tfrec.export.ann_index import choose_scann_params, scann_index
from tfrec.export.model_card import read_model_card, write_warmup_requests
from tfrec.export.rating import RatingModule
from tfrec.export.retrieval import RetrievalModule
from tfrec.export.savedmodel import export_model
from tfrec.export.versions import existing_versions, next_version

__all__ = [
    "RatingModule",
    "RetrievalModule",
    "choose_scann_params",
    "existing_versions",
    "export_model",
    "next_version",
    "read_model_card",
    "scann_index",
    "write_warmup_requests",
]
