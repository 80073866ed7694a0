"""Feature layers shared by the feature-aware models (FM, Wide & Deep, TwoTower): MovieLens's
named features and the typed features of your own schema.json datasets.

Each layer maps raw feature tensors (strings / int64 as in the pipelines) to dense tensors and
owns its lookups, so models exported from them accept raw values.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrec.data import features as F
from tfrec.models.initializers import random_normal, seeded_embedding
# Age codes are a closed set: an IntegerLookup over them (0 = unknown -> OOV).
AGE_VOCAB = list(F.AGE_CODES)
YEAR_BUCKETS = list(range(1920, 2021, 5))


class Untracked:
    """Holds a value outside Keras' attribute tracking (see :func:`string_lookup` for why)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def string_lookup(values: Sequence[str], name: str) -> tf.keras.layers.StringLookup:
    """Raw strings -> ids, 0 = out of vocabulary (the :class:`tfrec.data.Vocabulary` layout)."""
    # A numpy array, not a list: Keras tracks list attributes and walks every element each time it
    # collects layers (hundreds of times while tracing), which made tracing seconds slower.
    vocab = np.asarray([str(v) for v in values], dtype=object)
    return tf.keras.layers.StringLookup(vocabulary=vocab, num_oov_indices=1, mask_token=None, name=name)


class GenrePooling(tf.keras.layers.Layer):
    """Mean of genre embeddings over the non-padding entries of a genre vector.

    Inputs: ``genres`` tf.string [batch, MAX_GENRES] padded with "". Output: [batch, dim]
    (zeros for an item without genres).

    Args:
      vocabulary: genre names.
      dim: embedding size.
    """

    def __init__(self, vocabulary: Sequence[str], dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "vocabulary", list(vocabulary))  # untracked: see towers._untracked
        self.dim = int(dim)
        self.seed = int(seed)
        self.lookup = string_lookup(self.vocabulary, f"{self.name}_lookup")
        self.embedding = seeded_embedding(len(self.vocabulary) + 1, self.dim, name=f"{self.name}_embedding",
                                          seed=self.seed)

    def encode(self, genres):
        """Strings -> int64 indices, -1 where padding (what :meth:`embed` takes; string-free)."""
        return tf.where(tf.not_equal(genres, F.PAD), self.lookup(genres), tf.constant(-1, tf.int64))

    def embed(self, ids):
        mask = tf.cast(ids >= 0, tf.float32)[..., None]
        total = tf.reduce_sum(self.embedding(tf.maximum(ids, 0)) * mask, axis=1)
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def call(self, genres):
        return self.embed(self.encode(genres))

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "dim": self.dim, "seed": self.seed}


class CategoricalEmbedding(tf.keras.layers.Layer):
    """Embedding of one categorical feature: strings via StringLookup, ints via IntegerLookup.

    Inputs: [batch] tf.string (``kind="string"``) or tf.int64 (``kind="int"``). Output: [batch, dim].
    Unknown values share the out-of-vocabulary row.
    """

    def __init__(self, vocabulary: Sequence, dim: int, kind: str = "string", seed: int = 0,
                 bucket_boundaries: Optional[Sequence[float]] = None, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "vocabulary", list(vocabulary))  # untracked: see towers._untracked
        self.dim = int(dim)
        self.kind = kind
        self.seed = int(seed)
        self.bucket_boundaries = list(bucket_boundaries) if bucket_boundaries is not None else None
        if self.bucket_boundaries is not None:
            self.lookup = tf.keras.layers.Discretization(bin_boundaries=self.bucket_boundaries, name=f"{self.name}_bins")
            size = len(self.bucket_boundaries) + 1
        elif kind == "int":
            self.lookup = tf.keras.layers.IntegerLookup(vocabulary=[int(v) for v in self.vocabulary],
                                                        num_oov_indices=1, mask_token=None, name=f"{self.name}_lookup")
            size = len(self.vocabulary) + 1
        else:
            self.lookup = string_lookup(self.vocabulary, f"{self.name}_lookup")
            size = len(self.vocabulary) + 1
        self.size = size
        self.embedding = seeded_embedding(size, self.dim, name=f"{self.name}_embedding", seed=self.seed)

    def indices(self, values):
        if self.bucket_boundaries is not None:
            return self.lookup(tf.cast(values, tf.float32))
        return self.lookup(values)

    encode = indices  # raw values -> int64 indices (string-free input of embed)

    def embed(self, ids):
        return self.embedding(ids)

    def call(self, values):
        return self.embedding(self.indices(values))

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "dim": self.dim, "kind": self.kind,
                "seed": self.seed, "bucket_boundaries": self.bucket_boundaries}


def side_feature_layers(vocabularies: dict, dim: int, seed: int, prefix: str = "",
                        specs: Optional[dict] = None) -> dict:
    """One embedding layer per side feature present in ``vocabularies`` (+ age and year).

    With ``specs`` (a schema.json dataset's fitted feature specs, see :func:`schema_feature_layers`)
    the layers follow the specs' feature types instead of MovieLens's named features.
    """
    if specs:
        return schema_feature_layers(specs, vocabularies, dim, seed, prefix=prefix)
    layers = {}
    for name in (F.GENDER, F.OCCUPATION, F.ZIP):
        if name in vocabularies:
            layers[name] = CategoricalEmbedding(vocabularies[name], dim, seed=seed, name=f"{prefix}{name}")
    if F.GENDER in vocabularies:  # users table present: age codes are a closed set
        layers[F.AGE] = CategoricalEmbedding(AGE_VOCAB, dim, kind="int", seed=seed, name=f"{prefix}age")
    if F.GENRES in vocabularies:
        layers[F.GENRES] = GenrePooling(vocabularies[F.GENRES], dim, seed=seed, name=f"{prefix}genres")
        layers[F.YEAR] = CategoricalEmbedding([], dim, seed=seed, bucket_boundaries=YEAR_BUCKETS, name=f"{prefix}year")
    return layers


class NumericFeature(tf.keras.layers.Layer):
    """A numeric feature standardised with training statistics, plus a missing indicator, projected.

    Input: float32 [batch] (NaN = missing). Computes ``[(x - mean) / std, isnan(x)]`` (0 for the
    standardised value when missing) and a linear map of that pair to ``dim``. Output: [batch, dim].

    Args:
      mean, std: statistics of the training split (``std`` > 0).
      dim: output size.
    """

    def __init__(self, mean: float, std: float, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.dim, self.seed = float(mean), float(std) or 1.0, int(dim), int(seed)
        self.project = tf.keras.layers.Dense(
            self.dim, name=f"{self.name}_dense",
            kernel_initializer=random_normal(self.seed, f"{self.name}_dense"))

    def encode(self, values):
        return tf.cast(tf.reshape(values, [-1]), tf.float32)

    def embed(self, x):
        missing = tf.math.is_nan(x)
        z = tf.where(missing, tf.zeros_like(x), (x - self.mean) / self.std)
        return self.project(tf.stack([z, tf.cast(missing, tf.float32)], axis=-1))

    def call(self, values):
        return self.embed(self.encode(values))

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "dim": self.dim, "seed": self.seed}


class TextPooling(tf.keras.layers.Layer):
    """Mean of token embeddings of a free-text feature, tokenised in-graph with stock TF string ops.

    Input: tf.string [batch]. Lower-cases (UTF-8), splits on runs of anything but letters and
    digits (:data:`tfrec.data.features.TEXT_PATTERN`), keeps the first ``max_tokens`` tokens and
    averages their embeddings (unknown tokens share the OOV row). Output: [batch, dim] (zeros for
    empty text). The ops (StringLower, StaticRegexReplace, StringSplitV2, LookupTableFindV2) are
    all core TensorFlow, so an exported model runs under TF Serving without tf-text.

    Args:
      vocabulary: known tokens (from :func:`tfrec.data.features.tokenize` over training items).
      dim: embedding size.
      max_tokens: tokens kept per text.
    """

    def __init__(self, vocabulary: Sequence[str], dim: int, max_tokens: int = F.MAX_VALUES, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "vocabulary", list(vocabulary))  # untracked: see towers._untracked
        self.dim, self.max_tokens, self.seed = int(dim), int(max_tokens), int(seed)
        self.pooling = GenrePooling(self.vocabulary, self.dim, seed=self.seed, name=f"{self.name}_tokens")

    def tokens(self, text):
        text = tf.strings.lower(tf.reshape(text, [-1]), encoding="utf-8")
        text = tf.strings.strip(tf.strings.regex_replace(text, F.TEXT_PATTERN, " "))
        ragged = tf.strings.split(text)
        return ragged.to_tensor(default_value=F.PAD, shape=[None, self.max_tokens])

    def encode(self, text):
        return self.pooling.encode(self.tokens(text))

    def embed(self, ids):
        return self.pooling.embed(ids)

    def call(self, text):
        return self.pooling(self.tokens(text))

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "dim": self.dim,
                "max_tokens": self.max_tokens, "seed": self.seed}


def schema_feature_layers(specs: dict, vocabularies: dict, dim: int, seed: int, prefix: str = "",
                          side: Optional[str] = None) -> dict:
    """One layer per feature of a schema.json dataset (``specs`` from
    :func:`tfrec.data.vocab.fit_side_features`), optionally only the ``side`` ("user"/"item") ones.

    categorical -> :class:`CategoricalEmbedding`; multi_categorical -> :class:`GenrePooling` (a
    pooled embedding over the padded list); numeric -> :class:`NumericFeature`; text ->
    :class:`TextPooling`. Each maps the raw feature tensor to [batch, dim].
    """
    layers = {}
    for name, spec in specs.items():
        if side is not None and spec["side"] != side:
            continue
        kind, lname = spec["type"], f"{prefix}{name}"
        if kind != "numeric" and not vocabularies.get(name):
            continue  # no value seen in training: the feature carries nothing to learn from
        if kind == "categorical":
            layers[name] = CategoricalEmbedding(vocabularies.get(name, []), dim, seed=seed, name=lname)
        elif kind == "multi_categorical":
            layers[name] = GenrePooling(vocabularies.get(name, []), dim, seed=seed, name=lname)
        elif kind == "numeric":
            layers[name] = NumericFeature(spec["mean"], spec["std"], dim, seed=seed, name=lname)
        else:
            layers[name] = TextPooling(vocabularies.get(name, []), dim, seed=seed, name=lname)
    return layers
