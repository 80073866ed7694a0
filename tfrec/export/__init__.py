"""Export: versioned SavedModels under ``export/<name>/<version>/`` that any TF program can load.

See :mod:`tfrec.export.savedmodel` for the signatures. Importing this package imports TensorFlow.
"""

from tfrec.export.savedmodel import (
    RatingModule,
    RetrievalModule,
    choose_scann_params,
    existing_versions,
    export_model,
    next_version,
    read_model_card,
    scann_index,
    write_warmup_requests,
)

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
