"""Serving: a local server that speaks TensorFlow Serving's REST and gRPC APIs, and a client.

``tfrec serve`` takes tensorflow_model_server's flags; requests written for TF Serving work
unchanged. Importing this package is light (no TensorFlow) so the CLI starts fast.
"""

from tfrec.serving.client import Client


def create_app(*args, **kwargs):
    """See :func:`tfrec.serving.app.create_app`."""
    from tfrec.serving.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["Client", "create_app"]
