"""The one HTTP layer of mlcd, shared by the DSS client and the artifact repository.

- :mod:`mlcd.transport.session`: the session factory (auth, TLS, identity
  encoding) and the wall-clock :class:`~mlcd.transport.session.Deadline`.
- :mod:`mlcd.transport.retry`: the retry policy and the transient statuses.
- :mod:`mlcd.transport.bodies`: capped bodies and the hashing streaming download.
- :mod:`mlcd.transport.limits`: the bounds, with their environment variables.
"""
