"""The release core: deployment decisions and steps, with no printing, no command results, no argparse.

``archive`` and ``approval`` check what may be deployed; ``plan`` says what a
deploy would change; ``deploy``, ``rollback`` and ``gate`` are the steps;
``decisions`` is the one table of how a failure ends, ``failure`` applies it,
``ledger`` is the only writer of the records; ``policy`` decides for earlier
environments; ``target`` is the deployment-target interface; ``session`` ties
one environment's release together.
"""
