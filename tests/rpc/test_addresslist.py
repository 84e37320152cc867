"""The address list: the seed's HTTP reply, static addresses, and a list service that fails."""

import json

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web import resource, server

from tests.roles import wait_for
from viabtc.config import parse_address
from viabtc.rpc.addresslist import AddressList, BadAddressList, describe, parse_address_list


class FakeListService(resource.Resource):
    """
    A FAKE of the deployment's HTTP list service (``jobmaster_url``,
    ``blockmaster_url``, ref §6.1, §6.4): it answers the seed's reply to a
    request carrying the right AUTHORIZATION header, and whatever a test sets
    in ``reply``/``code`` otherwise.
    """

    isLeaf = True

    def __init__(self, auth):
        super().__init__()
        self.auth = auth
        self.code = 200
        self.reply = {"error": {"message": "ok"}, "result": []}
        self.requests = []

    def render_GET(self, request):
        self.requests.append(request.getHeader("authorization"))
        if request.getHeader("authorization") != self.auth:
            request.setResponseCode(401)
            return b"unauthorized"
        request.setResponseCode(self.code)
        return self.reply if isinstance(self.reply, bytes) else json.dumps(self.reply).encode()


def reply(*entries):
    return json.dumps({"error": {"message": "ok"}, "result": list(entries)}).encode()


def sockaddrs(addresses):
    return tuple(a.sockaddr for a in addresses)


def tcp(*texts):
    return tuple(parse_address(text) for text in texts)


class ParseTests(TestCase):
    def test_seed_reply(self):
        for transport in ("udp", "tcp"):
            addresses = parse_address_list(reply("10.0.0.1:6000", "10.0.0.2 6001", "10.0.0.1:6000"),
                                           transport)
            self.assertEqual(sockaddrs(addresses), (("10.0.0.1", 6000), ("10.0.0.2", 6001)))
            self.assertEqual({a.transport for a in addresses}, {transport})

    def test_null_error_is_fine(self):
        body = json.dumps({"error": None, "result": ["10.0.0.1:6000"]}).encode()
        self.assertEqual(sockaddrs(parse_address_list(body)), (("10.0.0.1", 6000),))

    def test_empty_list_valid_only_where_allowed(self):
        body = json.dumps({"error": None, "result": []}).encode()
        self.assertEqual(parse_address_list(body, "tcp", allow_empty=True), ())
        e = self.assertRaises(BadAddressList, parse_address_list, body, "udp")
        self.assertIn("non-empty", str(e))

    def test_bad_replies(self):
        for body, transport, words in [
            (b"<html>", "udp", "not JSON"),
            (b"[]", "udp", "not a JSON object"),
            (json.dumps({"error": {"message": "denied"}, "result": []}).encode(), "udp", "denied"),
            (json.dumps({"error": {"message": "ok"}, "result": "10.0.0.1:6000"}).encode(), "udp",
             "non-empty"),
            (b'{"result": "x"}', "tcp", "not an array"),
            (reply("jm.example:6000"), "udp", "result[0]"),
            (reply("10.0.0.1:0"), "udp", "result[0]"),
            (reply("10.0.0.1:6000", 7), "udp", "result[1]"),
            (reply("udp@1.2.3.4:5"), "tcp", "result[0]"),
            (reply("tcp:host=bm.example:port=5000"), "tcp", "result[0]"),
        ]:
            e = self.assertRaises(BadAddressList, parse_address_list, body, transport,
                                  allow_empty=transport == "tcp")
            self.assertIn(words, str(e))

    def test_describe(self):
        self.assertEqual(describe(tcp("tcp@10.0.0.1:5000", "10.0.0.2 5001")),
                         "10.0.0.1:5000, 10.0.0.2:5001")
        self.assertEqual(describe(()), "")


class ListTests(TestCase):
    """Against a real twisted.web server on loopback, the fake list service behind it."""

    def setUp(self):
        self.service = FakeListService("secret-token")
        port = reactor.listenTCP(0, server.Site(self.service), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"http://127.0.0.1:{port.getHost().port}/blockmaster"
        self.changes = []

    def address_list(self, **kw):
        kw.setdefault("url", self.url)
        kw.setdefault("auth", "secret-token")
        kw.setdefault("what", "blockmasters")
        kw.setdefault("transport", "tcp")
        kw.setdefault("allow_empty", True)
        return AddressList(lambda addresses: self.changes.append(sockaddrs(addresses)), reactor, **kw)

    def test_static_only_applied_at_start(self):
        addresses = self.address_list(url=None, static=tcp("tcp@10.0.0.1:5000"))
        self.assertEqual(sockaddrs(addresses.addresses), (("10.0.0.1", 5000),))
        self.assertEqual(self.changes, [])
        addresses.startService()
        self.addCleanup(addresses.stopService)
        self.assertEqual(self.changes, [(("10.0.0.1", 5000),)])

    def test_static_replaced_by_a_reload(self):
        addresses = self.address_list(url=None, static=tcp("tcp@10.0.0.1:5000"))
        self.assertTrue(addresses.set_static(tcp("tcp@10.0.0.2:5000")))
        self.assertEqual(self.changes, [])  # not running: heard at start
        addresses.startService()
        self.addCleanup(addresses.stopService)
        self.assertFalse(addresses.set_static(tcp("tcp@10.0.0.2:5000")))
        self.assertTrue(addresses.set_static(tcp("tcp@10.0.0.2:5000") + tcp("tcp@10.0.0.3:5000")))
        self.assertEqual(self.changes, [(("10.0.0.2", 5000),), (("10.0.0.2", 5000), ("10.0.0.3", 5000))])

    @defer.inlineCallbacks
    def test_fetched_with_the_auth_header_and_merged(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:5000", "10.0.0.1:5000"]}
        addresses = self.address_list(static=tcp("tcp@10.0.0.1:5000"))
        yield addresses.refresh()
        self.assertEqual(self.service.requests, ["secret-token"])
        self.assertEqual(sockaddrs(addresses.addresses), (("10.0.0.1", 5000), ("10.0.0.2", 5000)))
        self.assertIsNone(addresses.last_error)
        self.assertEqual(self.changes, [], "not running: nothing applied")

    @defer.inlineCallbacks
    def test_failed_fetch_keeps_the_last_list(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:6000"]}
        addresses = self.address_list(transport="udp", allow_empty=False, what="jobmasters")
        yield addresses.refresh()
        for code, body in [(500, {"error": {"message": "ok"}, "result": ["10.9.9.9:1"]}),
                           (200, b"garbage"),
                           (200, {"error": {"message": "ok"}, "result": []}),
                           (200, {"error": {"message": "down"}, "result": []})]:
            self.service.code, self.service.reply = code, body
            yield addresses.refresh()
            self.assertEqual(sockaddrs(addresses.addresses), (("10.0.0.2", 6000),))
            self.assertIsNotNone(addresses.last_error)

    @defer.inlineCallbacks
    def test_empty_list_empties_where_allowed(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:5000"]}
        addresses = self.address_list()
        yield addresses.refresh()
        self.service.reply = {"error": {"message": "ok"}, "result": []}
        yield addresses.refresh()
        self.assertEqual(addresses.addresses, ())
        self.assertIsNone(addresses.last_error)

    @defer.inlineCallbacks
    def test_wrong_auth_refused_and_logged(self):
        addresses = self.address_list(auth="wrong", static=tcp("tcp@10.0.0.1:5000"))
        yield addresses.refresh()
        self.assertIn("401", addresses.last_error)
        self.assertEqual(sockaddrs(addresses.addresses), (("10.0.0.1", 5000),))

    @defer.inlineCallbacks
    def test_unreachable_service(self):
        addresses = self.address_list(url="http://127.0.0.1:1/blockmaster")
        yield addresses.refresh()
        self.assertIsNotNone(addresses.last_error)
        self.assertEqual(addresses.addresses, ())

    @defer.inlineCallbacks
    def test_refreshed_while_running_and_applied_on_change(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:5000"]}
        addresses = self.address_list(interval=0.05, static=tcp("tcp@10.0.0.1:5000"))
        addresses.startService()
        self.addCleanup(addresses.stopService)
        yield wait_for(lambda: len(self.service.requests) >= 3)
        self.assertEqual(self.changes, [(("10.0.0.1", 5000),),
                                        (("10.0.0.1", 5000), ("10.0.0.2", 5000))],
                         "applied at start and once on the change, not on every unchanged fetch")
