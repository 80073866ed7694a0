"""Seeded initializers: one model seed, a distinct draw for each table and kernel."""

from __future__ import annotations

import zlib

import tensorflow as tf


def table_seed(seed: int, name: str) -> int:
    """The seed of the table called ``name`` in a model seeded with ``seed``.

    A seeded Keras initializer draws the same numbers on every call, so tables that shared one seed
    started with equal leading rows (row k of the user table equal to row k of the item table, every
    side-feature table the same). Mixing in the table's name keeps a model reproducible from its one
    ``seed`` and gives each table its own draw, whatever order the tables are built in.
    """
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % 2_147_483_647


def random_normal(seed: int, name: str, stddev: float = 0.05) -> tf.keras.initializers.RandomNormal:
    """``RandomNormal(stddev)`` for the table ``name``, seeded by :func:`table_seed`.

    Example::

        tf.keras.layers.Embedding(n_users, 32, name="user_embedding",
                                  embeddings_initializer=random_normal(seed, "user_embedding"))
    """
    return tf.keras.initializers.RandomNormal(stddev=stddev, seed=table_seed(seed, name))


def glorot_uniform(seed: int, name: str) -> tf.keras.initializers.GlorotUniform:
    """``GlorotUniform`` for the kernel ``name``, seeded by :func:`table_seed` (see there why)."""
    return tf.keras.initializers.GlorotUniform(seed=table_seed(seed, name))


def seeded_embedding(input_dim: int, output_dim: int, *, name: str, seed: int,
                     stddev: float = 0.05) -> tf.keras.layers.Embedding:
    """``Embedding(input_dim, output_dim, name=name)`` initialised by :func:`random_normal` of that
    same name, so the layer's name and its seed cannot drift apart."""
    return tf.keras.layers.Embedding(input_dim, output_dim, name=name,
                                     embeddings_initializer=random_normal(seed, name, stddev))
