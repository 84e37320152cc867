"""
Templates: parsing and checking ``getblocktemplate`` results, and the
template source (ordering with a FAKE node group on a ``task.Clock``; long
polling and tip checks against a real bcoin regtest node).
"""

import copy

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, task
from twisted.trial import unittest

from tests.node.fakenode import FakeNodeGroup
from tests.support import bcoin_node
from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.node.jsonrpc import NodeConfig, NodeGroup, NodeRPCClient, NodeTimeout, NodeUnavailable
from viabtc.node.template import Template, TemplateError, TemplateSource, TemplateTransaction

PREV = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"
TXID = "11" * 32
WTXID = "22" * 32
COMMITMENT = "6a24aa21a9ed" + "ab" * 32


def sample(**changes):
    """A bitcoind-like getblocktemplate result (one segwit transaction)."""
    result = {
        "capabilities": ["proposal"],
        "version": 0x20000000,
        "rules": ["csv", "!segwit", "taproot"],
        "previousblockhash": PREV,
        "transactions": [
            {"data": "0200000000010100", "txid": TXID, "hash": WTXID, "depends": [],
             "fee": 1500, "sigops": 4, "weight": 561},
            {"data": "01000000", "txid": "33" * 32, "hash": "33" * 32, "depends": [1],
             "fee": 200, "sigops": 0, "weight": 400},
        ],
        "coinbaseaux": {"flags": "0a0b"},
        "coinbasevalue": 312501700,
        "longpollid": PREV + "1234",
        "target": "00000000000000000004fa0b0000000000000000000000000000000000000000",
        "mintime": 1700000000,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 80000,
        "sizelimit": 4000000,
        "weightlimit": 4000000,
        "curtime": 1700000600,
        "bits": "1704fa0b",
        "height": 820000,
        "default_witness_commitment": COMMITMENT,
    }
    result.update(changes)
    return result


class TemplateParseTests(unittest.TestCase):
    def test_fields(self):
        t = Template.from_rpc(sample(), received_at=12.5)
        self.assertEqual(t.version, 0x20000000)
        self.assertEqual(t.previous_hash, hash_from_display_hex(PREV))
        self.assertEqual(t.height, 820000)
        self.assertEqual(t.bits, 0x1704FA0B)
        self.assertEqual(t.target, 0x04FA0B << (8 * (0x17 - 3)))
        self.assertEqual((t.curtime, t.mintime), (1700000600, 1700000000))
        self.assertEqual(t.coinbase_value, 312501700)
        self.assertEqual(t.coinbaseaux, b"\x0a\x0b")
        self.assertEqual(t.default_witness_commitment, bytes.fromhex(COMMITMENT))
        self.assertTrue(t.segwit_active)
        self.assertEqual(t.longpollid, PREV + "1234")
        self.assertEqual(t.received_at, 12.5)
        tx = t.transactions[0]
        self.assertEqual(tx.txid, bytes.fromhex(TXID)[::-1])
        self.assertEqual(tx.wtxid, bytes.fromhex(WTXID)[::-1])
        self.assertEqual(tx.data, bytes.fromhex("0200000000010100"))
        self.assertEqual((tx.fee, tx.weight, tx.sigops), (1500, 561, 4))
        self.assertEqual(t.transactions[1].depends, (1,))

    def test_txid_falls_back_to_hash(self):
        """Ref §3.5: a node without "txid" gives the id as "hash"."""
        t = Template.from_rpc(sample(transactions=[{"data": "01", "hash": TXID}]))
        self.assertEqual(t.transactions[0].txid, bytes.fromhex(TXID)[::-1])
        self.assertEqual(t.transactions[0].wtxid, t.transactions[0].txid)
        self.assertIsNone(t.transactions[0].fee)

    def test_before_segwit(self):
        """bcoin before activation: no rules, a commitment anyway; callers follow rules."""
        t = Template.from_rpc(sample(rules=[], coinbaseaux={}))
        self.assertFalse(t.segwit_active)
        self.assertEqual(t.coinbaseaux, b"")
        t = Template.from_rpc({k: v for k, v in sample().items()
                               if k not in ("rules", "default_witness_commitment", "longpollid")})
        self.assertEqual(t.rules, ())
        self.assertIsNone(t.default_witness_commitment)
        self.assertIsNone(t.longpollid)

    def test_signet(self):
        """Core's signet template: the rule and the challenge script."""
        t = Template.from_rpc(sample(rules=["csv", "!segwit", "!signet", "taproot"],
                                     signet_challenge="51"))
        self.assertTrue(t.signet)
        self.assertEqual(t.signet_challenge, b"\x51")
        self.assertFalse(Template.from_rpc(sample()).signet)
        self.assertIsNone(Template.from_rpc(sample()).signet_challenge)
        self.assertBadField("signet_challenge", rules=["segwit", "signet"])

    def assertBadField(self, field, **changes):
        with self.assertRaises(TemplateError) as e:
            Template.from_rpc(sample(**changes))
        self.assertEqual(e.exception.field, field)
        self.assertIn(field, str(e.exception))

    def test_bad_fields(self):
        self.assertBadField("previousblockhash", previousblockhash="abc")
        self.assertBadField("height", height=0)
        self.assertBadField("height", height="820000")
        self.assertBadField("version", version=True)
        self.assertBadField("coinbasevalue", coinbasevalue=-1)
        self.assertBadField("curtime", curtime=None)
        self.assertBadField("mintime", mintime=1700000601)
        self.assertBadField("bits", bits="1d00ffff00")
        self.assertBadField("bits", bits="zzzzzzzz")
        self.assertBadField("bits", bits="04923456")
        self.assertBadField("target", target="00" * 32)
        self.assertBadField("coinbaseaux.flags", coinbaseaux={"flags": "xyz"})
        self.assertBadField("default_witness_commitment", default_witness_commitment="6a24" + "00" * 36)
        self.assertBadField("rules", rules="segwit")
        self.assertBadField("longpollid", longpollid=5)
        self.assertBadField("transactions", transactions=None)
        self.assertBadField("transactions[0]", transactions=["00"])
        self.assertBadField("transactions[0].data", transactions=[{"txid": TXID}])
        self.assertBadField("transactions[0].txid", transactions=[{"data": "00", "txid": "x"}])
        self.assertBadField("transactions[0].fee", transactions=[{"data": "00", "txid": TXID, "fee": -5}])
        self.assertBadField("transactions[0].depends",
                            transactions=[{"data": "00", "txid": TXID, "depends": [1]}])

    def test_not_an_object(self):
        for result in (None, [], "template"):
            with self.assertRaises(TemplateError):
                Template.from_rpc(result)

    @given(
        field=st.sampled_from(sorted(sample())),
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=70)
            | st.sampled_from(["00" * 32, "207fffff", "ff" * 40]),
            lambda inner: (st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3)),
            max_leaves=6,
        ),
    )
    def test_any_field_value(self, field, value):
        """Whatever a field holds, the answer is a Template or a TemplateError."""
        result = copy.deepcopy(sample())
        result[field] = value
        try:
            Template.from_rpc(result)
        except TemplateError:
            pass


class TransactionFastPathTests(unittest.TestCase):
    """``TemplateTransaction.from_rpc``'s one-pass path against the field-by-field reference."""

    @given(
        field=st.sampled_from(["data", "txid", "hash", "fee", "weight", "sigops", "depends"]),
        value=st.none() | st.booleans() | st.integers(-2, 2**33) | st.text(max_size=70)
        | st.sampled_from(["00" * 32, "0 " * 32, "zz" * 32, "AB" * 32, "", "01000000", " 0100"])
        | st.lists(st.integers(-1, 3), max_size=2),
        drop=st.booleans(),
    )
    def test_same_as_the_checked_path(self, field, value, drop):
        entry = {"data": "0200000000010100", "txid": TXID, "hash": WTXID, "depends": [],
                 "fee": 1500, "sigops": 4, "weight": 561}
        if drop:
            del entry[field]
        else:
            entry[field] = value
        try:
            expected = TemplateTransaction.checked_from_rpc(2, entry)
        except TemplateError as e:
            with self.assertRaises(TemplateError) as got:
                TemplateTransaction.from_rpc(2, entry)
            self.assertEqual(str(got.exception), str(e))
        else:
            self.assertEqual(TemplateTransaction.from_rpc(2, entry), expected)


def template_result(height, prev="aa", longpollid=None, ntx=0):
    return sample(
        height=height, previousblockhash=prev * 32, longpollid=longpollid,
        transactions=[{"data": "00", "txid": f"{i:064x}"} for i in range(1, ntx + 1)],
    )


class TemplateSourceOrderTests(unittest.TestCase):
    """The source's decisions, with answers in an order the test picks."""

    def setUp(self):
        self.clock = task.Clock()
        self.nodes = FakeNodeGroup()
        self.source = TemplateSource(self.nodes, self.clock, tip_interval=0.5, retry_delay=1.0)
        self.seen = []
        self.source.add_observer(
            lambda t, new_tip: self.seen.append((t.height, t.previous_hash[:1], new_tip))
        )
        self.source.startService()
        self.addCleanup(self.stop)

    def stop(self):
        if self.source.running:
            self.source.stopService()

    def answer(self, method, result):
        params, d = self.nodes.take(method)
        d.callback(result)
        return params

    def test_first_template(self):
        self.assertEqual(self.nodes.methods(), ["getblocktemplate"])
        params = self.answer("getblocktemplate", template_result(10))
        self.assertEqual(params, ({"rules": ["segwit", "signet"]},))
        self.assertEqual(self.seen, [(10, b"\xaa", True)])
        self.assertEqual(self.source.current.height, 10)

    def test_out_of_order_answers(self):
        """An older request answering last never replaces the newer answer (§12.13)."""
        first_params, first = self.nodes.take("getblocktemplate")
        second = self.source.refresh(clean=True)
        _params, second_d = self.nodes.take("getblocktemplate")
        second_d.callback(template_result(11, "bb", ntx=2))
        first.callback(template_result(11, "bb", ntx=1))
        self.assertEqual(len(self.source.current.transactions), 2)
        self.assertEqual(self.seen, [(11, b"\xbb", True)])
        self.assertEqual(self.successResultOf(second).height, 11)

    def test_lower_height_dropped(self):
        """An older request for a lower height is dropped whatever it says."""
        _p, first = self.nodes.take("getblocktemplate")
        self.source.refresh()
        _p, second = self.nodes.take("getblocktemplate")
        second.callback(template_result(12, "cc"))
        first.callback(template_result(11, "bb"))
        self.assertEqual(self.source.current.height, 12)

    def test_lagging_node_dropped_unless_tip_agrees(self):
        self.answer("getblocktemplate", template_result(12, "cc"))
        d = self.source.refresh()
        self.answer("getblocktemplate", template_result(11, "bb"))
        self.assertEqual(self.successResultOf(d).height, 12)
        # The node's tip really is bb (a reorg to a shorter chain): accepted.
        self.clock.advance(0.5)
        self.answer("getbestblockhash", "bb" * 32)
        self.answer("getblocktemplate", template_result(11, "bb"))
        self.assertEqual(self.source.current.height, 11)

    def test_same_tip_refresh_is_not_new(self):
        self.answer("getblocktemplate", template_result(10))
        self.source.refresh()
        self.answer("getblocktemplate", template_result(10, ntx=3))
        self.source.refresh(clean=True)
        self.answer("getblocktemplate", template_result(10, ntx=3))
        self.assertEqual(self.seen, [(10, b"\xaa", True), (10, b"\xaa", False), (10, b"\xaa", True)])

    def test_tip_check(self):
        """A new best block triggers one refresh; the same tip none."""
        self.answer("getblocktemplate", template_result(10, "aa"))
        self.clock.advance(0.5)
        self.answer("getbestblockhash", "aa" * 32)
        self.assertEqual(self.nodes.methods(), [])
        self.clock.advance(0.5)
        self.answer("getbestblockhash", "bb" * 32)
        self.assertEqual(self.nodes.methods(), ["getblocktemplate"])
        self.clock.advance(0.5)
        self.answer("getbestblockhash", "bb" * 32)
        self.assertEqual(self.nodes.methods(), ["getblocktemplate"], "no second refresh while one runs")
        self.answer("getblocktemplate", template_result(11, "bb"))
        self.assertEqual(self.seen[-1], (11, b"\xbb", True))
        self.assertEqual(self.source.best_hash, b"\xbb" * 32)

    def test_tip_check_does_not_overlap(self):
        self.clock.advance(0.5)
        self.clock.advance(0.5)
        self.assertEqual(self.nodes.methods().count("getbestblockhash"), 1)

    def test_tip_check_failures_keep_the_loop(self):
        self.answer("getblocktemplate", template_result(10, "aa"))
        for _ in range(3):
            self.clock.advance(0.5)
            _p, d = self.nodes.take("getbestblockhash")
            d.errback(NodeUnavailable("fake", "getbestblockhash", "down"))
        self.clock.advance(0.5)
        self.answer("getbestblockhash", "not a hash")
        self.clock.advance(0.5)
        self.answer("getbestblockhash", "bb" * 32)
        self.assertEqual(self.nodes.methods(), ["getblocktemplate"])

    def test_blocknotify(self):
        self.answer("getblocktemplate", template_result(10, "aa"))
        d = self.source.blocknotify()
        self.answer("getbestblockhash", "bb" * 32)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.nodes.methods(), ["getblocktemplate"])

    def test_failed_refresh(self):
        """A failed or unusable answer fails the refresh, is logged, and changes nothing."""
        self.answer("getblocktemplate", template_result(10))
        d = self.source.refresh()
        self.answer("getblocktemplate", {"height": 11})
        self.failureResultOf(d, TemplateError)
        self.assertEqual(self.source.current.height, 10)

    def test_observer_failure_is_contained(self):
        def broken(template, new_tip):
            raise RuntimeError("observer bug")

        self.source.add_observer(broken)
        self.answer("getblocktemplate", template_result(10))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.source.remove_observer(broken)
        self.source.refresh()
        self.answer("getblocktemplate", template_result(10))
        self.assertEqual(len(self.seen), 2)

    def test_longpoll(self):
        """With a longpollid the source long-polls; the answer applies; then again."""
        self.answer("getblocktemplate", template_result(10, "aa", longpollid="lp1"))
        self.clock.advance(0)
        params = self.answer("getblocktemplate", template_result(11, "bb", longpollid="lp2"))
        self.assertEqual(params[0]["longpollid"], "lp1")
        self.assertEqual(self.seen[-1], (11, b"\xbb", True))
        self.clock.advance(0)
        params, d = self.nodes.take("getblocktemplate")
        self.assertEqual(params[0]["longpollid"], "lp2")
        d.errback(NodeTimeout("fake", "getblocktemplate", "no reply"))
        self.assertEqual(self.nodes.methods(), [])
        self.clock.advance(1.0)
        params, _d = self.nodes.take("getblocktemplate")
        self.assertEqual(params[0]["longpollid"], "lp2")

    def test_stop_cancels(self):
        """Stopping cancels what is in flight and asks nothing more."""
        _params, d = self.nodes.take("getblocktemplate")
        self.source.stopService()
        self.assertTrue(d.called)
        self.assertIsNone(self.source.current)
        self.clock.advance(5)
        self.assertEqual(self.nodes.methods(), [])


def wait_for(predicate, timeout=20.0, step=0.05):
    """A Deferred firing once ``predicate()`` is true (checked every ``step`` s)."""
    from twisted.internet import reactor

    @defer.inlineCallbacks
    def loop():
        waited = 0.0
        while not predicate():
            if waited > timeout:
                raise AssertionError("condition not reached in time")
            yield task.deferLater(reactor, step, lambda: None)
            waited += step

    return loop()


class RealNodeSourceTests(unittest.TestCase):
    """The source against a real bcoin regtest node."""

    def setUp(self):
        self.bcoin = bcoin_node(self, shared=True)

    def source(self, **kw):
        client = NodeRPCClient(NodeConfig(url=self.bcoin.rpc_url, user="x", password=self.bcoin.api_key))
        self.addCleanup(client.close)
        source = TemplateSource(NodeGroup([client]), **kw)
        seen = []
        source.add_observer(lambda t, new_tip: seen.append((t, new_tip)))
        source.startService()
        self.addCleanup(source.stopService)
        return source, seen

    @defer.inlineCallbacks
    def test_template_from_node(self):
        source, seen = self.source(tip_interval=3600, longpoll=False)
        yield wait_for(lambda: seen)
        template, new_tip = seen[0]
        self.assertTrue(new_tip)
        self.assertEqual(template.height, self.bcoin.rpc("getblockcount") + 1)
        self.assertEqual(template.previous_hash, hash_from_display_hex(self.bcoin.rpc("getbestblockhash")))
        self.assertEqual(template.bits, 0x207FFFFF)
        # bcoin regtest before segwit activation: no rules, yet a commitment.
        self.assertFalse(template.segwit_active)
        self.assertIsNotNone(template.default_witness_commitment)
        self.assertIsNotNone(template.longpollid)

    @defer.inlineCallbacks
    def test_longpoll_returns_on_new_block(self):
        """No tip checks: only the long poll can tell the source about the block."""
        from twisted.internet import reactor

        source, seen = self.source(tip_interval=3600, longpoll=True)
        yield wait_for(lambda: seen)
        # Let the long poll reach the node before the block is mined.
        yield wait_for(lambda: source._longpoll_call is not None)
        yield task.deferLater(reactor, 0.3, lambda: None)
        height = seen[0][0].height
        self.bcoin.generate(1)
        yield wait_for(lambda: source.current.height == height + 1)
        self.assertTrue(seen[-1][1])

    @defer.inlineCallbacks
    def test_tip_check_notices_block(self):
        source, seen = self.source(tip_interval=0.1, longpoll=False)
        yield wait_for(lambda: seen)
        height = seen[0][0].height
        (new_hash,) = self.bcoin.generate(1)
        yield wait_for(lambda: source.current.height == height + 1)
        self.assertEqual(source.best_hash, hash_from_display_hex(new_hash))
        self.assertEqual(seen[-1][0].previous_hash, hash_from_display_hex(new_hash))
