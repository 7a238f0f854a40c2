"""Use cases of the loop, framework-free: ingest, predict, monitor, retrain, promote, alerts."""
