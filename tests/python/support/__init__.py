"""Every shared test helper, in one package (``tests/python`` is on ``sys.path`` via pytest's pythonpath).

- ``pipeline_env``: a stand-in pipeline (design + automation nodes, mlcd.yaml, keys) driven through the CLI;
- ``artifact_server``: nginx as a PUT-capable artifact repository;
- ``flowtools``: helpers of the deploy/test/smoke/rollback flow tests;
- ``dssfakes``: in-process fakes of DSS answers for client unit tests;
- ``reltools``: the reliability suite's fault plans, kill points and result records;
- ``simclient``: a thin HTTP client of the stand-in for its own tests.
"""
