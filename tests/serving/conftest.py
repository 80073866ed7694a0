"""Fixtures for the serving tests: TF Serving-like test models built at test time (tf_serving_models.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tf_serving_models import build_all  # noqa: E402

from tfrec.serving.model_manager import ModelManager  # noqa: E402
from tfrec.serving.server_config import ModelEntry  # noqa: E402


@pytest.fixture(scope="session")
def tf_serving_models(tmp_path_factory):
    return build_all(tmp_path_factory.mktemp("tf_serving_models"))


@pytest.fixture(scope="session")
def tf_serving_manager(tf_serving_models):
    p = tf_serving_models
    entries = [
        ModelEntry("hp2v", p["saved_model_half_plus_two_2_versions"], policy="specific", versions=[123],
                   labels={"Version_Label": 123}),
        ModelEntry("default", p["saved_model_half_plus_two_cpu"]),
        ModelEntry("tf2", p["saved_model_half_plus_two_tf2_cpu"]),
        ModelEntry("hp3", p["saved_model_half_plus_three"]),
        ModelEntry("echo", p["echo"]),
    ]
    m = ModelManager(entries, poll_seconds=0)
    m.refresh()
    assert not m.errors, m.errors
    return m


