"""
viabtc: a distributed Bitcoin mining pool server on Twisted.

Each role (jobmaster, gateway, mineragent, blockmaster, bitpeer, poolbench,
metawriter, metarelay, alertcenter) is a Twisted service launched by its twistd
plugin.  The layers below the roles are described in docs/architecture.md.
"""

__version__ = "0.1.0"
