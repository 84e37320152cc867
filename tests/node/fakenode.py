"""
FAKES of a node, for faults a real bcoin node cannot show on demand: a
server answering garbage or never answering, a node checking cookie auth,
and a node group whose answers arrive in the order a test chooses.  Never
used where the real node can show the behaviour.
"""

import json

from twisted.internet import defer, protocol
from twisted.web import resource, server


class FakeHTTPNode(resource.Resource):
    """
    A FAKE JSON-RPC HTTP endpoint: ``answer(request, call)`` returns the
    reply body (bytes) for each POST, or ``server.NOT_DONE_YET`` to hang.
    ``calls`` records every decoded request body and its Authorization.
    """

    isLeaf = True

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.calls = []
        self.hanging = []

    def render_POST(self, request):
        call = json.loads(request.content.read())
        self.calls.append((call, request.getHeader("authorization")))
        body = self.answer(request, call)
        if body is server.NOT_DONE_YET:
            self.hanging.append(request)
        return body


def result_of(value):
    """An ``answer`` replying ``value`` as the result, with the right id."""
    return lambda request, call: json.dumps({"result": value, "error": None, "id": call["id"]}).encode()


def listen_fake(testcase, fake):
    """Serve ``fake`` on a free loopback port; its URL.  Stopped by cleanup."""
    from twisted.internet import reactor

    port = reactor.listenTCP(0, server.Site(fake), interface="127.0.0.1")

    def stop():
        for request in fake.hanging:
            if request.channel is not None:
                request.channel.transport.abortConnection()
        return port.stopListening()

    testcase.addCleanup(stop)
    return f"http://127.0.0.1:{port.getHost().port}/"


class _Garbage(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(b"\x00\xffthis is not HTTP\r\n\r\n")
        self.transport.loseConnection()


def listen_garbage(testcase):
    """A FAKE node that answers any request with bytes that are not HTTP."""
    from twisted.internet import reactor

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(_Garbage), interface="127.0.0.1")
    testcase.addCleanup(port.stopListening)
    return f"http://127.0.0.1:{port.getHost().port}/"


class FakeNodeGroup:
    """
    A FAKE ``NodeGroup`` (and its primary client): each ``call`` returns a
    Deferred the test fires, so answers can arrive out of order, as they can
    from a real node only by chance.
    """

    name = "fake"

    def __init__(self):
        self.pending = []

    @property
    def primary(self):
        return self

    def call(self, method, *params, timeout=None):
        d = defer.Deferred()
        self.pending.append((method, params, timeout, d))
        return d

    def take(self, method):
        """Remove and return ``(params, deferred)`` of the oldest ``method`` call."""
        for i, (m, params, _timeout, d) in enumerate(self.pending):
            if m == method:
                del self.pending[i]
                return params, d
        raise AssertionError(f"no pending {method} call; pending: {[p[0] for p in self.pending]}")

    def methods(self):
        return [p[0] for p in self.pending]
