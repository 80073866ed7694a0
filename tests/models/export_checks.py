"""A trained two-tower's round trip as one reusable check: run folder -> reload -> SavedModel.

    from export_checks import assert_reloads_and_serves_like_memory
    served = assert_reloads_and_serves_like_memory(result.model, tmp_path / "run", tmp_path, users)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def assert_reloads_and_serves_like_memory(model, run_dir, tmp_path, users):
    """The run folder reloads to the same scores, and its brute-force export's ``serving_default``
    gives every user in ``users`` the in-memory model's top 10 (the exported history table and
    towers compute what the model does). Returns the loaded SavedModel for further checks."""
    import tfrec
    from tfrec.export import export_model

    reloaded = tfrec.load_run(run_dir).model
    np.testing.assert_allclose(reloaded.score_users(users), model.score_users(users), atol=1e-5)
    info = export_model(run_dir, name="tt", base_dir=tmp_path / "export", scann=False)
    served = tf.saved_model.load(info["paths"][-1])
    out = served.signatures["serving_default"](user_id=tf.constant(users))
    expected = model.recommend(users, k=10)
    for r, u in enumerate(users):
        assert [x.decode() for x in out["item_ids"].numpy()[r]] == expected[expected.user_id == u].item_id.tolist(), u
    return served
