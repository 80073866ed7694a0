"""Reports: plots a run folder holds (learning curves, embedding maps, ANN recall vs latency)."""
