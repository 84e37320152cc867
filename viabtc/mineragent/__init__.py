# -*- test-case-name: tests.mineragent -*-
"""
The mineragent role: a Stratum server inside a mining farm that carries
all its miners to the pool's gateway over one ``agent.*`` connection
(ref §5, docs/mineragent.md).  ``twistd -n viabtc-mineragent --config FILE``.
"""
