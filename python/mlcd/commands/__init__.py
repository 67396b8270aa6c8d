"""The commands framework: typed options, the parser, the context, the result type and running a command.

``options`` (typed options), ``parser`` (the argument parser, importable
without the CLI), ``context`` (``StageContext``), ``result`` (``StageResult``,
error → exit code) and ``runner`` (``execute``: one command, its stage file).
The commands themselves are the modules of ``mlcd.stages``.
"""
