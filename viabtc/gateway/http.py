# -*- test-case-name: tests.gateway.test_http -*-
"""
The gateway's HTTP interface (ref §4.11), as pool dashboards call it.

``GET`` anything: ``200 ok``, a health check.  ``POST`` a JSON-RPC object
``{"id":N,"method":"getclientsinfo","params":[]}``: one row per miner
connection.  An unknown method is a 404, a body that is not such an
object a 400, as the seed answers.
"""

import json

from twisted.web.resource import Resource

_MAX_BODY = 1 << 16
_HASHES_PER_DIFFICULTY = 2**32


def client_rows(sessions, now, agents=frozenset()):
    """``getclientsinfo`` rows for ``Session`` objects at time ``now``; ``agents``: those of mineragents."""
    rows = []
    for session in sessions:
        shares = session.share_valid + session.share_error
        elapsed = now - session.connect_time
        rows.append({
            "session_id": session.identity.subscription_id,
            "peer_addr": session.peer,
            "connect_time": int(session.connect_time),
            "is_agent": session in agents,
            "user": session.user,
            "worker": session.worker,
            "user_agent": session.user_agent,
            "difficulty": session.difficulty,
            "share_pow": session.share_pow,
            "share_valid": session.share_valid,
            "share_error": session.share_error,
            "reject": 100.0 * session.share_error / shares if shares else 0.0,
            "hashrate": session.share_pow * _HASHES_PER_DIFFICULTY / elapsed if elapsed > 0 else 0.0,
        })
    return rows


class GatewayResource(Resource):
    """Serves every path; ``server`` is the ``StratumServerFactory`` whose sessions are listed."""

    isLeaf = True

    def __init__(self, server, clock):
        super().__init__()
        self._server = server
        self._clock = clock

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"

    def render_POST(self, request):
        body = request.content.read(_MAX_BODY + 1)
        try:
            if len(body) > _MAX_BODY:
                raise ValueError("body too large")
            call = json.loads(body)
            if not isinstance(call, dict) or not isinstance(call.get("method"), str):
                raise ValueError("not a JSON-RPC object")
        except (ValueError, UnicodeDecodeError):
            request.setResponseCode(400)
            return b"bad request\n"
        if call["method"] != "getclientsinfo":
            request.setResponseCode(404)
            return b"method not found\n"
        sessions = [proto.session for proto in self._server.sessions]
        reply = {
            "error": {"code": 0, "message": "ok"},
            "result": client_rows(sessions, self._clock.seconds(),
                                  {proto.session for proto in getattr(self._server, "agents", ())}),
            "id": call.get("id"),
        }
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(reply, separators=(",", ":")).encode()
