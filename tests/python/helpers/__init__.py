"""Shared test helpers: stand-in pipelines (pipeline_env) and an artifact repository (artifact_server).

Import them as ``from helpers.pipeline_env import start_pipeline_env`` after putting
``tests/python`` on ``sys.path`` (the conftest.py files of tests/python/stages and
tests/python/core do this).
"""
