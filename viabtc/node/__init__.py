# -*- test-case-name: tests.node -*-
"""
Talking to bitcoind-compatible nodes: the JSON-RPC client with failover
(``jsonrpc``), the source of block templates (``template``) and the block
submitter (``submit``).  Deferred-based; time from an injected reactor.
"""
