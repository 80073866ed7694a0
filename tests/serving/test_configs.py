"""serving_configs/ parse with the official protos, and every base_path resolves to an export."""

import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrec.errors import ConfigError
from tfrec.serving.model_manager import ModelManager
from tfrec.serving.server_config import (
    load_model_config,
    parse_batching_parameters,
    parse_model_config,
    parse_monitoring_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "serving_configs"


@pytest.mark.parametrize("name", ["models.config", "models.docker.config"])
def test_model_configs_parse_with_official_protos(name):
    msg = text_format.Parse((CONFIGS / name).read_text(), model_server_config_pb2.ModelServerConfig())
    names = [c.name for c in msg.model_config_list.config]
    assert "mf" in names and "two_tower_bruteforce" in names
    for c in msg.model_config_list.config:
        assert Path(c.base_path).name == c.name  # export/<name> or /models/<name>


def test_every_base_path_resolves_to_an_export(exported, tmp_path, monkeypatch):
    # Lay the session's exports out as the repo's export/ folder and serve models.config from there.
    shutil.copytree(exported["base"], tmp_path / "export")
    monkeypatch.chdir(tmp_path)
    entries = load_model_config(CONFIGS / "models.config")
    manager = ModelManager(entries, poll_seconds=0)
    manager.refresh()
    for e in entries:
        assert e.base_path.resolve().parent == (tmp_path / "export").resolve()
        assert manager.versions(e.name), f"{e.name}: no servable version under {e.base_path}"
    docker = parse_model_config((CONFIGS / "models.docker.config").read_text())
    for e in docker:
        assert (tmp_path / "export" / Path(e.base_path).name).is_dir()


def test_version_policies():
    entries = parse_model_config((CONFIGS / "models.config").read_text())
    by = {e.name: e for e in entries}
    assert by["two_tower"].policy == "latest" and by["two_tower"].num_versions == 2
    assert by["mf"].policy == "all"


def test_batching_and_monitoring_configs():
    b = parse_batching_parameters((CONFIGS / "batching_parameters.config").read_text())
    assert b.max_batch_size == 64 and b.batch_timeout_micros == 0
    m = parse_monitoring_config((CONFIGS / "monitoring.config").read_text())
    assert m.enable and m.path == "/monitoring/prometheus/metrics"


def test_docker_compose_mounts_export():
    text = (CONFIGS / "docker-compose.yml").read_text()
    assert "tensorflow/serving" in text and "../export:/models" in text and "models.docker.config" in text


def test_bad_configs_are_reported():
    with pytest.raises(ConfigError, match="not a valid ModelServerConfig"):
        parse_model_config("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_model_config('model_config_list { config { name: "a" base_path: "/x" } '
                           'config { name: "a" base_path: "/y" } }')
    with pytest.raises(ConfigError, match="unknown field"):
        parse_batching_parameters("max_batch_sise { value: 3 }")
