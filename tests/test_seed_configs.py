"""
Every sample config of the seed (``tests/data/seed-configs/``, copies of
``../shared/seed/configs``) loads and its role starts, with only hosts,
ports and addresses changed: the drop-in promise, tried as an operator
switching one role at a time would.

What is changed, by ``localize``, and nothing else:

- every IP or ``proto@ip:port`` address becomes loopback on a free port
  (one free port per port number of the sample, TCP and UDP alike, so the
  jobmaster's ``tcp@...:6000`` and ``udp@...:6000`` stay one port);
- addresses of a daemon the role needs reach a real one: the coin daemon's
  port (8332, 18332) a bcoin regtest node started with the samples' own
  ``rpcpassword`` as its key, Redis's (6379 and the alertcenter's Sentinel
  ports) a real redis-server;
- payout addresses become regtest ones (the node is regtest; the seed's
  configs name no ``network``, so the chain is the node's);
- absolute file paths (``/var/log/pool/...``, ``/tmp/...``) move into the
  test's directory, as a deployment's paths would.

Each role is started in this process (``makeService`` + ``startService``
through its twistd ``Options``) and must be running and accept
connections on every TCP port of its ``svr``, ``monitor`` and ``cli``: every
role of the seed, one line each in ``SAMPLES``.
"""

import copy
import ipaddress
import json
import os
import re
import resource
import shutil
import socket
import time

from twisted.internet import defer, reactor, task, threads
from twisted.python.reflect import namedAny
from twisted.trial.unittest import TestCase

from viabtc.bitcoin.address import b58check_encode, encode_segwit_address
from viabtc.devnet import free_port
from viabtc.devnet.sentinel import SentinelGroup

from tests.roles import wait_for
from tests.support import bcoin_node, redis_server, require_service

SEED_CONFIGS = os.path.join(os.path.dirname(__file__), "data", "seed-configs")
ETC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "etc")

#: role -> (its sample, extra files written beside it: name -> their source,
#: a seed sample, or one of ours in etc/ where the seed ships none).
SAMPLES = {
    "jobmaster": ("jobmaster.json", {}),
    "gateway": ("gateway.json", {}),
    # The seed's metawriter reads its trust_file "trust.json": the
    # metawriter-trust.json sample.
    "metawriter": ("metawriter.json", {"trust.json": os.path.join(SEED_CONFIGS, "metawriter-trust.json")}),
    "metarelay": ("metarelay.json", {}),
    "alertcenter": ("alertcenter.json", {}),
    "poolbench": ("poolbench.json", {}),
    "blockmaster": ("blockmaster.json", {}),
    "mineragent": ("mineragent.json", {}),
    # The seed's bitpeer reads its peers from "peer.json", made by its
    # getpeer.py; it ships no sample of it, so ours (loopback) stands in.
    "bitpeer": ("bitpeer.json", {"peer.json": os.path.join(ETC, "peer.json")}),
}

#: Sample ports of the daemons roles talk to: the coin daemon and Redis.
COIN_PORTS = frozenset({8332, 18332})
REDIS_PORTS = frozenset({6379})
#: The Sentinels of the alertcenter sample's ``redis`` block (``name``/``addr``).
SENTINEL_PORTS = (26381, 26382, 26383)

_SEED_ADDRESS = re.compile(r"^(tcp|udp)@([0-9.]+):(\d+)$")
_PLAIN_ADDRESS = re.compile(r"^([0-9.]+):(\d+)$")
_URL = re.compile(r"^(https?://)([0-9.]+):(\d+)(/.*)?$")
#: keys whose string values are payout addresses
_PAYOUT_KEYS = frozenset({"main_coin_recipient", "address"})


def _bindable(port):
    """True when loopback ``port`` is free for TCP and UDP alike."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_both(taken):
    """
    A port free for TCP and UDP alike, with the next one free too and
    neither next to a port in ``taken``: a gateway's worker ``i`` serves
    its ``http_svr`` and ``cli`` on port + ``i`` (the gateway sample has
    ``worker_num`` 2).
    """
    while True:
        port = free_port()
        if not {port - 1, port, port + 1} & taken and _bindable(port) and _bindable(port + 1):
            return port


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Localizer:
    """
    Rewrites one sample: ports through one map, the daemons' ports to the
    real ones, hosts to loopback, payout addresses to regtest, paths into
    ``directory``.  ``servers`` collects the TCP ports the role listens on.
    """

    def __init__(self, directory, coin_port=None, redis_port=None, sentinel_ports=()):
        self.directory = directory
        self.coin_port = coin_port
        self.redis_port = redis_port
        self.sentinel_ports = dict(zip(SENTINEL_PORTS, sentinel_ports))
        self.ports = {}
        self.addresses = {}
        self.servers = []

    def port(self, sample_port):
        if sample_port in COIN_PORTS and self.coin_port is not None:
            return self.coin_port
        if sample_port in REDIS_PORTS and self.redis_port is not None:
            return self.redis_port
        if sample_port in self.sentinel_ports:
            return self.sentinel_ports[sample_port]
        if sample_port not in self.ports:
            self.ports[sample_port] = _free_both(set(self.ports.values()))
        return self.ports[sample_port]

    def payout_address(self, address):
        if address not in self.addresses:
            n = len(self.addresses)
            self.addresses[address] = (encode_segwit_address("bcrt", 0, bytes([n + 1]) * 20)
                                       if n % 2 == 0 else b58check_encode(b"\x6f" + bytes([n + 1]) * 20))
        return self.addresses[address]

    def value(self, value, key, server):
        if isinstance(value, dict):
            return self.section(value)
        if isinstance(value, list):
            return [self.value(item, key, server) for item in value]
        if not isinstance(value, str):
            return value
        match = _SEED_ADDRESS.match(value)
        if match:
            port = self.port(int(match.group(3)))
            if server and match.group(1) == "tcp":
                self.servers.append(port)
            return f"{match.group(1)}@127.0.0.1:{port}"
        match = _PLAIN_ADDRESS.match(value)
        if match:
            return f"127.0.0.1:{self.port(int(match.group(2)))}"
        match = _URL.match(value)
        if match:
            return f"{match.group(1)}127.0.0.1:{self.port(int(match.group(3)))}{match.group(4) or ''}"
        if _is_ip(value):
            return "127.0.0.1"
        if key in _PAYOUT_KEYS and len(value) > 25 and value[0] in "13b":
            return self.payout_address(value)
        if value.startswith(("/var/", "/tmp/")):
            return os.path.join(self.directory, value.strip("/").replace("/", "_"))
        return value

    def section(self, data, block=None):
        result = {}
        for key, value in data.items():
            if key == "port" and isinstance(value, int):
                result[key] = self.port(value)
            elif isinstance(value, dict):
                result[key] = self.section(value, key)
            else:
                # The listening points every role serves: svr, monitor, cli
                # (the jobmaster ignores its http_svr, as the seed's did).
                server = key == "cli" or (key == "bind" and block in ("svr", "monitor"))
                result[key] = self.value(value, key, server)
        return result


def localize(sample, directory, **services):
    """``(config, server ports)`` of ``sample`` (a dict) for this machine."""
    localizer = Localizer(directory, **services)
    return localizer.section(copy.deepcopy(sample)), localizer.servers


def _accepts(port):
    """True when loopback ``port`` accepts a TCP connection (runs in a thread)."""
    try:
        socket.create_connection(("127.0.0.1", port), 2.0).close()
    except OSError:
        return False
    return True


class SeedSampleTests(TestCase):
    """One test per role in ``SAMPLES``."""

    timeout = 120

    def setUp(self):
        # The samples' ``process`` block raises this process's limits: put
        # them back afterwards.
        for limit in (resource.RLIMIT_NOFILE, resource.RLIMIT_CORE):
            self.addCleanup(resource.setrlimit, limit, resource.getrlimit(limit))

    def services(self, sample):
        """The real daemons ``sample`` talks to (by its ports), started once per class."""
        text = json.dumps(sample)
        wanted = {}
        if any(f":{p}" in text or f'"port": {p}' in text for p in COIN_PORTS):
            wanted["coin_port"] = bcoin_node(self, shared=True, api_key="rpcpassword").rpc_port
        if any(f":{p}" in text or f'"port": {p}' in text for p in REDIS_PORTS):
            wanted["redis_port"] = redis_server(self).port
        if any(f":{p}" in text for p in SENTINEL_PORTS):
            # The seed's Sentinel form is spoken for real: a master and three Sentinels.
            group = require_service(lambda: SentinelGroup(replicas=0).start())
            self.addCleanup(group.stop)
            wanted["sentinel_ports"] = group.sentinel_ports
        return wanted

    @defer.inlineCallbacks
    def start_role(self, role):
        sample_name, extra = SAMPLES[role]
        with open(os.path.join(SEED_CONFIGS, sample_name)) as f:
            sample = json.load(f)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        config, servers = localize(sample, directory, **self.services(sample))
        path = os.path.join(directory, sample_name)
        with open(path, "w") as f:
            json.dump(config, f, indent=4)
        for name, source in extra.items():
            shutil.copy(source, os.path.join(directory, name))
        tap = namedAny(f"viabtc.{role}.tap")
        options = tap.Options()
        options.parseOptions(["--config", path])
        service = tap.makeService(options, reactor)
        self.addCleanup(service.role_logging.remove)
        # As twistd does: listen (and open files) first, then start.
        service.privilegedStartService()
        service.startService()
        # After the stop, let an outgoing connection attempt in flight (a
        # HostnameEndpoint's, which a stop does not cancel) fail by itself.
        self.addCleanup(task.deferLater, reactor, 1.0, lambda: None)
        self.addCleanup(service.stopService)
        self.assertTrue(service.running)
        self.assertTrue(servers, f"the {role} sample listens nowhere")
        for port in servers:
            # A role with worker processes (the gateway's sample has
            # worker_num 2) serves some ports only once its workers run.
            deadline = time.monotonic() + 30
            while not (yield threads.deferToThread(_accepts, port)):
                self.assertLess(time.monotonic(), deadline, f"{role} does not accept connections on {port}")
                yield task.deferLater(reactor, 0.1, lambda: None)
        return service



@defer.inlineCallbacks
def _jobmaster_builds_a_job(testcase, service):
    """The node's chain (regtest) was taken, the sample naming none, and a job made."""
    yield wait_for(lambda: service.work.current is not None)
    testcase.assertEqual(service.work.settings.network.name, "regtest")


#: Checks beyond "running and listening", per role.
READY = {"jobmaster": _jobmaster_builds_a_job}


def _role_test(role):
    @defer.inlineCallbacks
    def test(self):
        service = yield self.start_role(role)
        if role in READY:
            yield READY[role](self, service)

    test.__name__ = f"test_{role.replace('-', '_')}"
    test.__doc__ = f"The seed's {SAMPLES[role][0]} starts our {role}."
    return test


for _role in SAMPLES:
    setattr(SeedSampleTests, f"test_{_role.replace('-', '_')}", _role_test(_role))
