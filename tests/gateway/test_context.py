"""The gateway's pool context: unique identities and coinbases, events into statistics."""

from hypothesis import given, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from viabtc.gateway.bans import BanList
from viabtc.gateway.blocks import BlockCourier
from viabtc.gateway.context import GatewayContext
from viabtc.stratum.context import IdentityAllocator
from viabtc.stratum.context import Identity, IPoolContext
from viabtc.stratum.jobs import JobBook

from tests.gateway.test_blocks import FakeLink
from tests.stratum.jobs import prepared_job, settings


class IdentityTests(TestCase):
    def test_layout(self):
        allocator = IdentityAllocator(seed=0x0000000500000009)
        self.assertEqual(allocator.allocate(), Identity(bytes.fromhex("0000000a"), 5))

    def test_wraps_at_64_bits(self):
        allocator = IdentityAllocator(seed=2**64 - 1)
        self.assertEqual(allocator.allocate(), Identity(bytes(4), 0))

    @given(st.integers(0, 2**64 - 1), st.integers(1, 300))
    def test_consecutive_connections_never_share_an_extranonce1(self, seed, n):
        allocator = IdentityAllocator(seed=seed)
        self.assertEqual(len({allocator.allocate().extranonce1 for _ in range(n)}), n)

    def test_seeded_at_random(self):
        self.assertNotEqual(IdentityAllocator().allocate(), IdentityAllocator().allocate())


class ContextTests(TestCase):
    def context(self, worker_id):
        clock = Clock()
        return GatewayContext(settings(), worker_id, JobBook(), BanList(clock), stats=None,
                              courier=BlockCourier(FakeLink(), clock, 4.0), clock=clock)

    def test_provides_the_seam(self):
        verifyObject(IPoolContext, self.context(1))

    def test_worker_id_makes_coinbases_unique_across_gateways(self):
        prepared = prepared_job(job_id="1a")
        identity = Identity(bytes.fromhex("01020304"), 7)
        a = self.context(1).coinbase1_head(prepared, "alice") + identity.coinbase1_tail
        b = self.context(2).coinbase1_head(prepared, "alice") + identity.coinbase1_tail
        self.assertNotEqual(a, b)
        self.assertEqual(a[-8:], ((1 << 16) + 0x1a).to_bytes(4, "little") + (7).to_bytes(4, "little"))
        self.assertIn(b"Mined by alice", a)
