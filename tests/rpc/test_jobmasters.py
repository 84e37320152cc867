"""The jobmaster list: the seed's HTTP reply, static addresses, and a list service that fails."""

import json

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web import resource, server

from tests.roles import wait_for
from viabtc.rpc.client import DatagramSender
from viabtc.rpc.jobmasters import BadJobmasterList, JobmasterList, parse_jobmaster_list


class FakeListService(resource.Resource):
    """
    A FAKE of the deployment's HTTP jobmaster-list service (ref §6.4): it
    answers the seed's reply to a request carrying the right AUTHORIZATION
    header, and whatever a test sets in ``reply``/``code`` otherwise.
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


class ParseTests(TestCase):
    def test_seed_reply(self):
        self.assertEqual(parse_jobmaster_list(reply("10.0.0.1:6000", "10.0.0.2 6001", "10.0.0.1:6000")),
                         (("10.0.0.1", 6000), ("10.0.0.2", 6001)))

    def test_null_error_is_fine(self):
        body = json.dumps({"error": None, "result": ["10.0.0.1:6000"]}).encode()
        self.assertEqual(parse_jobmaster_list(body), (("10.0.0.1", 6000),))

    def test_bad_replies(self):
        for body, words in [
            (b"<html>", "not JSON"),
            (b"[]", "not a JSON object"),
            (json.dumps({"error": {"message": "denied"}, "result": []}).encode(), "denied"),
            (reply(), "non-empty"),
            (json.dumps({"error": {"message": "ok"}, "result": "10.0.0.1:6000"}).encode(), "non-empty"),
            (reply("jm.example:6000"), "result[0]"),
            (reply("10.0.0.1:0"), "result[0]"),
            (reply("10.0.0.1:6000", 7), "result[1]"),
        ]:
            e = self.assertRaises(BadJobmasterList, parse_jobmaster_list, body)
            self.assertIn(words, str(e))


class ListTests(TestCase):
    """Against a real twisted.web server on loopback, the fake list service behind it."""

    def setUp(self):
        self.service = FakeListService("secret-token")
        port = reactor.listenTCP(0, server.Site(self.service), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"http://127.0.0.1:{port.getHost().port}/jobmaster"
        self.sender = DatagramSender((), max_size=1024, reactor=reactor, role="test")

    def jobmasters(self, **kw):
        kw.setdefault("url", self.url)
        kw.setdefault("auth", "secret-token")
        return JobmasterList(self.sender, reactor, **kw)

    def test_static_only(self):
        jobmasters = JobmasterList(self.sender, reactor, static=[("10.0.0.1", 6000)])
        self.assertEqual(jobmasters.addresses, (("10.0.0.1", 6000),))

    @defer.inlineCallbacks
    def test_fetched_with_the_auth_header_and_merged(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:6000", "10.0.0.1:6000"]}
        jobmasters = self.jobmasters(static=[("10.0.0.1", 6000)])
        yield jobmasters.refresh()
        self.assertEqual(self.service.requests, ["secret-token"])
        self.assertEqual(jobmasters.addresses, (("10.0.0.1", 6000), ("10.0.0.2", 6000)))
        self.assertIsNone(jobmasters.last_error)

    @defer.inlineCallbacks
    def test_failed_fetch_keeps_the_last_list(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:6000"]}
        jobmasters = self.jobmasters()
        yield jobmasters.refresh()
        for code, body in [(500, {"error": {"message": "ok"}, "result": ["10.9.9.9:1"]}),
                           (200, b"garbage"),
                           (200, {"error": {"message": "down"}, "result": []})]:
            self.service.code, self.service.reply = code, body
            yield jobmasters.refresh()
            self.assertEqual(jobmasters.addresses, (("10.0.0.2", 6000),))
            self.assertIsNotNone(jobmasters.last_error)

    @defer.inlineCallbacks
    def test_wrong_auth_refused_and_logged(self):
        jobmasters = self.jobmasters(auth="wrong", static=[("10.0.0.1", 6000)])
        yield jobmasters.refresh()
        self.assertIn("401", jobmasters.last_error)
        self.assertEqual(jobmasters.addresses, (("10.0.0.1", 6000),))

    @defer.inlineCallbacks
    def test_unreachable_service(self):
        jobmasters = self.jobmasters(url="http://127.0.0.1:1/jobmaster")
        yield jobmasters.refresh()
        self.assertIsNotNone(jobmasters.last_error)
        self.assertEqual(jobmasters.addresses, ())

    @defer.inlineCallbacks
    def test_refreshed_while_running(self):
        self.service.reply = {"error": {"message": "ok"}, "result": ["10.0.0.2:6000"]}
        jobmasters = self.jobmasters(interval=0.05)
        jobmasters.startService()
        self.addCleanup(jobmasters.stopService)
        yield wait_for(lambda: len(self.service.requests) >= 2 and jobmasters.addresses)
        self.assertEqual(jobmasters.addresses, (("10.0.0.2", 6000),))
