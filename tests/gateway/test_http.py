"""The HTTP interface (ref §4.11): health check, getclientsinfo, 400 and 404."""

import json
from io import BytesIO

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.test.requesthelper import DummyRequest

from viabtc.gateway.http import GatewayResource, client_rows
from viabtc.stratum.context import Identity
from viabtc.stratum.session import Session


class _Server:
    """The one attribute of a Stratum factory the resource reads."""

    def __init__(self, sessions):
        self.sessions = sessions


class _Proto:
    def __init__(self, session):
        self.session = session


def session():
    s = Session(Identity(bytes.fromhex("0a0b0c0d"), 1), "10.0.0.1", 4242, 1000.0, 2.0)
    s.authorize("alice.rig1", 4)
    s.user_agent = "cgminer"
    s.share_valid, s.share_error, s.share_pow = 3, 1, 6.0
    return s


class HTTPTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1010)
        self.resource = GatewayResource(_Server({_Proto(session())}), self.clock)

    def post(self, body):
        request = DummyRequest([b""])
        request.method = b"POST"
        request.content = BytesIO(body)
        return request, self.resource.render(request)

    def test_get_is_ok(self):
        request = DummyRequest([b"anything"])
        self.assertEqual(self.resource.render(request), b"ok\n")

    def test_getclientsinfo(self):
        request, body = self.post(b'{"id":3,"method":"getclientsinfo","params":[]}')
        reply = json.loads(body)
        self.assertEqual((reply["id"], reply["error"]), (3, {"code": 0, "message": "ok"}))
        (row,) = reply["result"]
        self.assertEqual(row["session_id"], "000000010a0b0c0d")
        self.assertEqual((row["peer_addr"], row["user"], row["worker"]), ("10.0.0.1:4242", "alice", "rig1"))
        self.assertEqual((row["share_valid"], row["share_error"], row["reject"]), (3, 1, 25.0))
        self.assertEqual(row["hashrate"], 6.0 * 2**32 / 10)

    def test_unknown_method_is_404_and_garbage_400(self):
        request, _ = self.post(b'{"id":3,"method":"nope","params":[]}')
        self.assertEqual(request.responseCode, 404)
        for body in (b"{", b"[]", b'{"id":1}', b"\xff"):
            request, _ = self.post(body)
            self.assertEqual(request.responseCode, 400, body)

    def test_rows_of_a_fresh_session(self):
        s = Session(Identity(bytes(4), 0), "::1", 1, 5.0, 1.0)
        (row,) = client_rows([s], 5.0)
        self.assertEqual((row["reject"], row["hashrate"], row["user"]), (0.0, 0.0, ""))
