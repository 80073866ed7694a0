"""Seeded, bounded fuzzing of a real `tfrec serve` on loopback: no 5xx, only JSON errors, still correct after.

The request generator is benchmarks/serving_fuzz.py (whose 10,000-request run the README quotes);
here 2,000 requests to TF Serving-like models and tfrec's own exports.
"""

import json
import socket
import subprocess
import sys
import time


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_thousand_malformed_requests_get_json_4xx_and_the_server_keeps_answering(
        tf_serving_models, exported, tmp_path, load_benchmark):
    fuzz = load_benchmark("serving_fuzz")
    models = {"default": tf_serving_models["saved_model_half_plus_two_cpu"],
              "tf2": tf_serving_models["saved_model_half_plus_two_tf2_cpu"],
              "hp2v": tf_serving_models["saved_model_half_plus_two_2_versions"],
              "tt": exported["base"] / "two_tower", "mf": exported["base"] / "mf"}
    lines = ["model_config_list {"] + [
        f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}' for n, p in models.items()] + ["}"]
    (tmp_path / "models.config").write_text("\n".join(lines))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfrec.cli", "serve", "--model_config_file",
                             str(tmp_path / "models.config"), "--rest_api_port", str(port), "--port", "0",
                             "--file_system_poll_wait_seconds", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if fuzz.send(port, "GET", "/v1/models/tt", b"")[0] == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.3)
        before = fuzz.send(port, "POST", "/v1/models/tt:predict", b'{"instances": [{"user_id": "1"}]}')
        result = fuzz.run(port, seed=0, n=2000, models=list(models))
        assert result["problems"] == []
        assert not any(status >= 500 for status in result["statuses"])
        assert result["statuses"].get(200, 0) > 50 and result["statuses"].get(400, 0) > 1000  # both paths exercised
        assert proc.poll() is None
        status, payload = fuzz.send(port, "POST", "/v1/models/default:predict", b'{"instances": [2.0]}')
        assert (status, json.loads(payload)) == (200, {"predictions": [3.0]})
        assert fuzz.send(port, "POST", "/v1/models/tt:predict", b'{"instances": [{"user_id": "1"}]}') == before
    finally:
        proc.terminate()
        proc.wait(timeout=30)
