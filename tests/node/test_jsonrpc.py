"""
The JSON-RPC client and node group: against a real bcoin regtest node, a
closed port, and FAKE servers for garbage, hangs and cookie auth.
"""

import base64
import json
import os

from twisted.internet import defer
from twisted.trial import unittest
from twisted.web import server

from tests.node.fakenode import FakeHTTPNode, listen_fake, listen_garbage, result_of
from tests.support import bcoin_node
from viabtc.devnet import free_port
from viabtc.node.jsonrpc import (
    JSONText,
    NodeConfig,
    NodeError,
    NodeGroup,
    NodeRPCClient,
    NodeTimeout,
    NodeUnavailable,
    json_string,
    request_body,
)


def client_for(testcase, url, **kw):
    client = NodeRPCClient(NodeConfig(url=url, **kw))
    testcase.addCleanup(client.close)
    return client


def closed_url():
    return f"http://127.0.0.1:{free_port()}/"


class NodeConfigTests(unittest.TestCase):
    def test_name_defaults_to_host_port(self):
        self.assertEqual(NodeConfig(url="http://10.0.0.1:8332/").name, "10.0.0.1:8332")
        self.assertEqual(NodeConfig.from_host("node", 18443, name="a").url, "http://node:18443/")
        self.assertEqual(NodeConfig.from_host("node", 18443, name="a").name, "a")

    def test_bad_url(self):
        for url in ("node:8332", "ftp://node:1/", "http://node:notaport/", "http:///"):
            with self.assertRaises(ValueError, msg=url):
                NodeConfig(url=url)

    def test_password_not_in_repr(self):
        self.assertNotIn("s3cret", repr(NodeConfig(url="http://a:1/", user="u", password="s3cret")))


class RealNodeTests(unittest.TestCase):
    """Calls to a real bcoin regtest node."""

    def setUp(self):
        self.bcoin = bcoin_node(self, shared=True)

    def client(self, **kw):
        kw.setdefault("user", "viabtc")
        kw.setdefault("password", self.bcoin.api_key)
        return client_for(self, self.bcoin.rpc_url, name="bcoin", **kw)

    @defer.inlineCallbacks
    def test_call(self):
        """Results arrive decoded; calls reuse the client."""
        client = self.client()
        count = yield client.call("getblockcount")
        self.assertEqual(count, self.bcoin.rpc("getblockcount"))
        best = yield client.call("getbestblockhash")
        self.assertEqual(len(best), 64)

    @defer.inlineCallbacks
    def test_json_error_names_node_and_call(self):
        client = self.client()
        with self.assertRaises(NodeError) as e:
            yield client.call("getblockheader", "00" * 32)
        self.assertEqual((e.exception.node, e.exception.method), ("bcoin", "getblockheader"))
        self.assertIsInstance(e.exception.code, int)
        self.assertIn("node bcoin: getblockheader failed", str(e.exception))

    @defer.inlineCallbacks
    def test_wrong_password(self):
        client = self.client(password="wrong")
        with self.assertRaises(NodeUnavailable) as e:
            yield client.call("getblockcount")
        self.assertIn("401", e.exception.reason)

    @defer.inlineCallbacks
    def test_failover_is_sticky(self):
        """A down node first: the call fails over and the live node moves to the front."""
        down = client_for(self, closed_url(), name="down")
        live = self.client()
        group = NodeGroup([down, live])
        count = yield group.call("getblockcount")
        self.assertEqual(count, self.bcoin.rpc("getblockcount"))
        self.assertEqual([c.name for c in group.clients], ["bcoin", "down"])
        self.assertIs(group.primary, live)

    @defer.inlineCallbacks
    def test_call_all(self):
        """Every node answers for itself, in preference order."""
        group = NodeGroup([self.client(), client_for(self, closed_url(), name="down")])
        replies = yield group.call_all("getblockcount")
        self.assertEqual([r.node for r in replies], ["bcoin", "down"])
        self.assertTrue(replies[0].ok)
        self.assertEqual(replies[0].result, self.bcoin.rpc("getblockcount"))
        self.assertFalse(replies[1].ok)
        self.assertIsInstance(replies[1].error, NodeUnavailable)

    @defer.inlineCallbacks
    def test_group_prefers_an_answer(self):
        """When all fail, the error of a node that answered is the one raised."""
        group = NodeGroup([client_for(self, closed_url(), name="down"), self.client()])
        with self.assertRaises(NodeError) as e:
            yield group.call("nosuchmethod")
        self.assertEqual(e.exception.node, "bcoin")


class TransportFaultTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_closed_port(self):
        client = client_for(self, closed_url(), name="gone")
        with self.assertRaises(NodeUnavailable) as e:
            yield client.call("getblockcount")
        self.assertEqual((e.exception.node, e.exception.method), ("gone", "getblockcount"))
        self.assertIn("node gone: getblockcount failed", str(e.exception))

    @defer.inlineCallbacks
    def test_all_down(self):
        group = NodeGroup([client_for(self, closed_url(), name="a"),
                           client_for(self, closed_url(), name="b")])
        with self.assertRaises(NodeUnavailable) as e:
            yield group.call("getblockcount")
        self.assertEqual(e.exception.node, "a")
        self.assertEqual([c.name for c in group.clients], ["a", "b"])

    @defer.inlineCallbacks
    def test_not_http(self):
        client = client_for(self, listen_garbage(self))
        with self.assertRaises(NodeUnavailable):
            yield client.call("getblockcount")

    @defer.inlineCallbacks
    def test_not_json(self):
        client = client_for(self, listen_fake(self, FakeHTTPNode(lambda r, c: b"<html>oops</html>")))
        with self.assertRaises(NodeUnavailable) as e:
            yield client.call("getblockcount")
        self.assertIn("not JSON", e.exception.reason)

    @defer.inlineCallbacks
    def test_malformed_replies(self):
        """JSON that is not a JSON-RPC reply for this call is a clean error."""
        for body in (b"[1, 2]", b'{"error": null}', b'{"result": 1, "error": null, "id": 99999}', b"null"):
            client = client_for(self, listen_fake(self, FakeHTTPNode(lambda r, c, b=body: b)))
            with self.assertRaises(NodeUnavailable, msg=body):
                yield client.call("getblockcount")

    @defer.inlineCallbacks
    def test_odd_error_object(self):
        """An error that is not {code, message} is still a NodeError with its text."""
        fake = FakeHTTPNode(
            lambda r, c: json.dumps({"result": None, "error": "boom", "id": c["id"]}).encode()
        )
        client = client_for(self, listen_fake(self, fake))
        with self.assertRaises(NodeError) as e:
            yield client.call("getblockcount")
        self.assertIsNone(e.exception.code)
        self.assertIn("boom", e.exception.message)

    @defer.inlineCallbacks
    def test_hang_times_out(self):
        """A node that never answers: NodeTimeout, and the group moves on."""
        hanging = FakeHTTPNode(lambda r, c: server.NOT_DONE_YET)
        slow = client_for(self, listen_fake(self, hanging), name="slow")
        with self.assertRaises(NodeTimeout) as e:
            yield slow.call("getblockcount", timeout=0.2)
        self.assertIn("no reply within 0.2 s", str(e.exception))
        ok = client_for(self, listen_fake(self, FakeHTTPNode(result_of(7))), name="ok")
        group = NodeGroup([slow, ok])
        self.assertEqual((yield group.call("getblockcount", timeout=0.2)), 7)
        self.assertIs(group.primary, ok)

    @defer.inlineCallbacks
    def test_request_body(self):
        """The body is bitcoind's JSON-RPC 1.0 request with increasing ids."""
        fake = FakeHTTPNode(result_of(None))
        client = client_for(self, listen_fake(self, fake), user="u", password="p")
        yield client.call("submitblock", "00ff")
        yield client.call("getblockcount")
        (first, auth), (second, _) = fake.calls
        self.assertEqual(first["method"], "submitblock")
        self.assertEqual(first["params"], ["00ff"])
        self.assertEqual(first["jsonrpc"], "1.0")
        self.assertGreater(second["id"], first["id"])
        self.assertEqual(auth, "Basic " + base64.b64encode(b"u:p").decode())


    @defer.inlineCallbacks
    def test_json_text_param_sent_as_is(self):
        """A ready ``JSONText`` param (a block's hex) is spliced into the request unchanged."""
        fake = FakeHTTPNode(result_of(None))
        client = client_for(self, listen_fake(self, fake))
        yield client.call("submitblock", json_string(b"00ff" * 500, b"00ff" * 500), 7, JSONText([b'{"a":', b"[1]}"]))
        ((call, _),) = fake.calls
        self.assertEqual(call["params"], ["00ff" * 1000, 7, {"a": [1]}])


class RequestBodyTests(unittest.TestCase):
    def test_same_as_json_dumps(self):
        """With a ``JSONText`` param or without, the body is the one ``json.dumps`` makes."""
        plain = request_body(3, "submitblock", ("abcd", 1, None, [True]))
        spliced = request_body(3, "submitblock", (json_string(b"abcd"), 1, None, [True]))
        expected = json.dumps({"jsonrpc": "1.0", "id": 3, "method": "submitblock",
                               "params": ["abcd", 1, None, [True]]}, separators=(",", ":")).encode()
        self.assertEqual(plain, expected)
        self.assertEqual(spliced, expected)


class CookieAuthTests(unittest.TestCase):
    """bitcoind's .cookie auth against a FAKE node that checks the header."""

    def setUp(self):
        self.cookie_path = os.path.join(self.mktemp())
        self.write_cookie("aaaa")
        self.expected = "aaaa"

        def answer(request, call):
            if request.getHeader("authorization") != self.header(self.expected):
                request.setResponseCode(401)
                return b""
            return json.dumps({"result": "ok", "error": None, "id": call["id"]}).encode()

        self.fake = FakeHTTPNode(answer)
        self.client = client_for(self, listen_fake(self, self.fake), cookie_file=self.cookie_path)

    def write_cookie(self, secret):
        with open(self.cookie_path, "w") as f:
            f.write(f"__cookie__:{secret}\n")

    def header(self, secret):
        return "Basic " + base64.b64encode(f"__cookie__:{secret}".encode()).decode()

    @defer.inlineCallbacks
    def test_cookie(self):
        self.assertEqual((yield self.client.call("getblockcount")), "ok")

    @defer.inlineCallbacks
    def test_new_cookie_after_node_restart(self):
        """On 401 the cookie is read again and the call repeated once."""
        yield self.client.call("getblockcount")
        self.write_cookie("bbbb")
        self.expected = "bbbb"
        self.assertEqual((yield self.client.call("getblockcount")), "ok")
        self.assertEqual([auth for _call, auth in self.fake.calls],
                         [self.header("aaaa"), self.header("aaaa"), self.header("bbbb")])

    @defer.inlineCallbacks
    def test_unchanged_cookie_rejected(self):
        self.expected = "other"
        with self.assertRaises(NodeUnavailable) as e:
            yield self.client.call("getblockcount")
        self.assertIn("401", e.exception.reason)
        self.assertEqual(len(self.fake.calls), 1)

    @defer.inlineCallbacks
    def test_missing_cookie_file(self):
        os.remove(self.cookie_path)
        with self.assertRaises(NodeUnavailable) as e:
            yield self.client.call("getblockcount")
        self.assertIn("cannot read cookie file", e.exception.reason)
