# -*- test-case-name: tests.dashboard.test_service -*-
"""
The dashboard's HTTP resources (twisted.web).

``/`` the overview (``?q=`` pre-filters the worker list), ``/user?name=U``
one user's page, ``/api/snapshot.json`` the same figures for scripts,
``/static/...`` the package's own CSS, JS and icon, ``/health`` a plain
``ok``.  Pages are rendered from the last ``Snapshot`` the service read, so
a page view never waits for Redis.  The content security policy allows
nothing but this host, so a page can never load a foreign asset.
"""

import json
import os

import attrs
from twisted.web.resource import NoResource, Resource
from twisted.web.static import File

from viabtc.dashboard import pages

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
CSP = b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"


@attrs.define
class DashboardState:
    """The newest ``Snapshot`` (None before the first read) and how pages refresh."""

    coin: str
    refresh: float
    snapshot: object = None


def _html(request, text):
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    request.setHeader(b"content-security-policy", CSP)
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"cache-control", b"no-store")
    return text.encode("utf-8")


def _arg(request, name):
    values = request.args.get(name.encode(), [])
    return values[0].decode("utf-8", "replace") if values else ""


class _SnapshotPage(Resource):
    """A page drawn from the latest snapshot; the waiting page until the first read from Redis."""

    isLeaf = True

    def __init__(self, state):
        super().__init__()
        self._state = state

    def render_GET(self, request):
        state = self._state
        if state.snapshot is None:
            return _html(request, pages.waiting(state.coin, state.refresh))
        return self.render_snapshot(request, state)


class OverviewPage(_SnapshotPage):
    def render_snapshot(self, request, state):
        return _html(request, pages.overview(state.snapshot, _arg(request, "q"), state.refresh))


class UserPage(_SnapshotPage):
    def render_snapshot(self, request, state):
        text = pages.user_page(state.snapshot, _arg(request, "name"), state.refresh)
        if text is None:
            request.setResponseCode(404)
            return b"unknown user\n"
        return _html(request, text)


def snapshot_json(snapshot):
    """The snapshot as JSON-ready data (series as ``[[minute, value], ...]``)."""
    def convert(value):
        if attrs.has(type(value)):
            return {f.name: convert(getattr(value, f.name)) for f in attrs.fields(type(value))}
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        return value

    return convert(snapshot)


class SnapshotJSON(Resource):
    isLeaf = True

    def __init__(self, state):
        super().__init__()
        self._state = state

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        snapshot = self._state.snapshot
        if snapshot is None:
            request.setResponseCode(503)
            return b'{"error": "no read from redis yet"}\n'
        return json.dumps(snapshot_json(snapshot)).encode()


class Health(Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"


class DashboardRoot(Resource):
    """The site's root: ``/`` renders the overview, children the rest."""

    def __init__(self, state):
        super().__init__()
        self._overview = OverviewPage(state)
        self.putChild(b"user", UserPage(state))
        api = Resource()
        api.putChild(b"snapshot.json", SnapshotJSON(state))
        self.putChild(b"api", api)
        static = File(STATIC_DIR, defaultType="application/octet-stream")
        static.directoryListing = lambda: NoResource()
        self.putChild(b"static", static)
        self.putChild(b"health", Health())

    def getChild(self, name, request):
        if name == b"":
            return self._overview
        return NoResource()
