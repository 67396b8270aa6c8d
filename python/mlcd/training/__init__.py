"""Continuous training: retrain saved models on an environment, keep a new version only when it wins."""
