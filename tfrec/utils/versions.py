"""The versions of tfrec and its stack, recorded in run folders and model cards."""

from __future__ import annotations

import importlib.metadata as md

PACKAGES = ("tfrec", "tensorflow", "tf-keras", "tensorflow-recommenders", "scann")


def package_versions(packages=PACKAGES) -> dict:
    """``{package: version or None}`` for the installed distributions."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
