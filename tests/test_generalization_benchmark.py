"""benchmarks/generalization.py: its shapes are valid generator arguments, bad names and --set are refused."""

import pytest

from tfrec.data import synthetic_movielens


@pytest.fixture(scope="module")
def generalization(load_benchmark):
    return load_benchmark("generalization")


def test_shapes_and_arguments(generalization, capsys):
    seq = generalization.SHAPES["sequential"]
    assert seq["n_ratings"] / seq["n_users"] == 160 and seq["taste_drift"] > 0 and seq["transition_rate"] > 0
    # Every shape's arguments are the generator's (checked at a small size: same keywords, same validation).
    for shape in generalization.SHAPES.values():
        small = {**shape, "n_users": 20, "n_items": 30, "n_ratings": 200}
        assert len(synthetic_movielens(**small).ratings) == 200
    assert generalization._parse_set(["history_length=50", "history_encoder=gru"]) == {
        "history_length": 50, "history_encoder": "gru"}
    with pytest.raises(SystemExit):
        generalization._parse_set(["history_length"])
    with pytest.raises(SystemExit):
        generalization.main(["--shapes", "sequential,nope"])
    assert "unknown shape or model 'nope'" in capsys.readouterr().err
