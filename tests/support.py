"""
Helpers shared by the trial suite: start real local services for a test case
and turn a missing service into a skip (developer machines) or a failure
(``VIABTC_REQUIRE_SERVICES=1``, i.e. CI); wait on the real reactor for
something to become true; read the JSON lines a protocol wrote; load
the seed's sample configs (``tests/data/seed-configs``).
"""

import json
import os

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest

from viabtc.devnet import ServiceUnavailable, services_required


def require_service(start):
    """
    Call ``start()`` (which starts a real service) and return its result.

    A ``ServiceUnavailable`` becomes a ``SkipTest`` unless services are
    required, in which case it propagates and the test fails.
    """
    try:
        return start()
    except ServiceUnavailable as e:
        if services_required():
            raise
        raise SkipTest(str(e))


def redis_server(testcase):
    """A real redis-server for ``testcase``, stopped by its cleanup."""
    from viabtc.devnet.redis import start_redis

    server = require_service(start_redis)
    testcase.addCleanup(server.stop)
    return server


def bcoin_node(testcase, shared=False, **kw):
    """
    A real bcoin regtest node (``viabtc.devnet.bcoin.BcoinNode`` with
    ``kw``) for ``testcase``, stopped by its cleanup.

    Starting bcoin takes a second or more, and trial has no
    ``setUpClass``: with ``shared=True`` every test of ``testcase``'s class
    gets the same node, started by the first and stopped when the test
    process exits.  Shared-node tests must not assume a chain height.
    """
    import atexit

    from viabtc.devnet.bcoin import start_bcoin

    if not shared:
        node = require_service(lambda: start_bcoin(**kw))
        testcase.addCleanup(node.stop)
        return node
    cls = type(testcase)
    node = cls.__dict__.get("_shared_bcoin_node")
    if node is None or node.process is None or node.process.poll() is not None:
        node = require_service(lambda: start_bcoin(**kw))
        atexit.register(node.stop)
        cls._shared_bcoin_node = node
    return node


async def wait_for(predicate, timeout=20.0, what="condition"):
    """Poll ``predicate`` on the real reactor until it returns something true; returns that."""
    for _ in range(int(timeout / 0.02)):
        value = predicate()
        if value:
            return value
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


def written_json(transport):
    """The JSON lines written to ``transport`` (a ``StringTransport``) since the last call, decoded."""
    data = transport.value()
    transport.clear()
    return [json.loads(line) for line in data.splitlines()]


#: Copies of the seed's sample configs, one per role.
SEED_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "seed-configs")


def seed_sample(name):
    """The seed's sample config ``<name>.json``, as a fresh dict."""
    with open(os.path.join(SEED_CONFIGS, f"{name}.json")) as f:
        return json.load(f)
