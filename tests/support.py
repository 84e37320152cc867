"""
Helpers shared by the trial suite: start real local services for a test case
and turn a missing service into a skip (developer machines) or a failure
(``VIABTC_REQUIRE_SERVICES=1``, i.e. CI).
"""

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
