"""Classic baselines (seed 003): popularity, item/user kNN, TF-IDF content, co-visitation; and the
strong ones a learned model has to beat: EASE (closed form) and implicit ALS.

All seven follow the recommender contract of :mod:`tfrec.models.base` (``fit`` -> self,
``recommend``, ``similar_items``, ``score_users``), need no TensorFlow, are deterministic, and score
every user at once with sparse matrix products (all 943 ML-100K users in a few tens of
milliseconds). ``save(dir)`` writes ``baseline.json`` (class, hyperparameters, ids) and
``baseline.npz`` (the fitted matrices, no pickle); ``Class.load(dir)`` restores them without
refitting.

Example:
  >>> from tfrec.models.baselines import ItemKNN
  >>> model = ItemKNN(n_neighbors=20).fit(train)                # doctest: +SKIP
  >>> model.recommend(["1", "2"], k=10)                          # doctest: +SKIP
  >>> model.similar_items(["50"], k=5)                           # doctest: +SKIP
  >>> model.save("runs/item_knn"); ItemKNN.load("runs/item_knn")  # doctest: +SKIP

Defaults were tuned on ML-100K with leave-last-out validation splits carved from the training
part (never the test split); ``benchmarks/ranking.py`` reports the test numbers.
"""

from tfrec.models.baselines.als import ImplicitALS
from tfrec.models.baselines.common import CONFIG_FILE, STATE_FILE
from tfrec.models.baselines.content import ContentTFIDF
from tfrec.models.baselines.covisitation import CoVisitation
from tfrec.models.baselines.ease import EASE
from tfrec.models.baselines.neighbors import ItemKNN, UserKNN
from tfrec.models.baselines.popularity import Popularity

__all__ = ["CONFIG_FILE", "STATE_FILE", "ContentTFIDF", "CoVisitation", "EASE", "ImplicitALS", "ItemKNN", "Popularity",
           "UserKNN"]
