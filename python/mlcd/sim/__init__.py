"""The local DSS stand-in: a design or automation node serving the DSS public REST API.

See ``docs/stand-in.md``. Start one with ``mlcd sim serve`` or, from tests,
with :class:`mlcd.sim.launcher.SimNode`.
"""
