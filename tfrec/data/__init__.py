"""Data: your own datasets (schema.json + CSV/Parquet), MovieLens loaders, synthetic data, splits, vocabularies, tf.data pipelines, sampling.

Importing this package does not import TensorFlow; the pipeline builders import it when called.
"""

from tfrec.data.dataset import InteractionData, MovieLensData
from tfrec.data.movielens import DATASETS, download_movielens, find_movielens, load_movielens
from tfrec.data.pipelines import PIPELINES, generator_dataset, make_dataset, output_signature, tensor_dataset
from tfrec.data.sampling import sample_negatives
from tfrec.data.infer import infer_schema
from tfrec.data.own import iter_interactions, load_dataset, open_dataset
from tfrec.data.schema import FEATURE_TYPES, Schema
from tfrec.data.splits import (
    cold_start_user_split,
    filter_min_interactions,
    leave_last_out_split,
    random_split,
    temporal_split,
    validation_split,
)
from tfrec.data.synthetic import synthetic_movielens
from tfrec.data.vocab import Vocabulary, fit_vocabularies, load_vocabularies, save_vocabularies

__all__ = [
    "DATASETS",
    "FEATURE_TYPES",
    "InteractionData",
    "Schema",
    "MovieLensData",
    "PIPELINES",
    "Vocabulary",
    "cold_start_user_split",
    "download_movielens",
    "filter_min_interactions",
    "find_movielens",
    "fit_vocabularies",
    "generator_dataset",
    "infer_schema",
    "iter_interactions",
    "load_dataset",
    "leave_last_out_split",
    "load_movielens",
    "load_vocabularies",
    "make_dataset",
    "open_dataset",
    "output_signature",
    "random_split",
    "sample_negatives",
    "save_vocabularies",
    "synthetic_movielens",
    "temporal_split",
    "tensor_dataset",
    "validation_split",
]
