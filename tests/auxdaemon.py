"""
Aux chain daemon STAND-INS for the merged-mining tests: no Namecoin-style
daemon, RSK node or VCASH node is on the package registries, so small
Twisted HTTP servers play them (fakes in the house rules' sense, named as
stand-ins): ``AuxDaemonStandIn`` (Namecoin-style), ``RskStandIn`` and
``VcashStandIn``.

``AuxDaemonStandIn`` answers what the jobmaster calls — ``getblockcount``, ``getauxblock()``,
``createauxblock(address)``, ``submitauxblock(hash, auxpow)`` and
``getauxblock(hash, auxpow)`` — with Namecoin Core's reply shape (``hash``,
``chainid``, ``previousblockhash``, ``coinbasevalue``, ``bits``,
``height``, ``_target`` as little-endian hex).  Each height has one block;
an accepted submission moves the chain to the next height.

Every AuxPoW it receives is verified the way Namecoin Core's
``CAuxPow::check`` and ``CheckProofOfWork`` do, by ``verify_auxpow`` below:
a separate, deliberately plain reading of the bytes with ``hashlib`` and
``struct`` that shares no code with ``viabtc.bitcoin.auxpow``.  The RSK
and VCASH stand-ins check their submissions in the same plain way.  Each
can be stopped (listening port closed and every connection cut) and
restarted on the same port; the Namecoin-style one can be slowed down.
"""

import hashlib
import json
import struct

from twisted.internet import reactor as default_reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.protocols.policies import WrappingFactory
from twisted.web import resource, server

from viabtc.config import NodeEntry


def _dsha(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _varint(data, at):
    first = data[at]
    if first < 0xFD:
        return first, at + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(data[at + 1:at + 1 + size], "little"), at + 1 + size


def _legacy_tx(data, at):
    """``(end, first input's scriptSig, output scripts)`` of the legacy transaction at ``at``."""
    at += 4
    n_in, at = _varint(data, at)
    script_sig = None
    for i in range(n_in):
        at += 36
        n, at = _varint(data, at)
        if i == 0:
            script_sig = data[at:at + n]
        at += n + 4
    n_out, at = _varint(data, at)
    scripts = []
    for _ in range(n_out):
        at += 8
        n, at = _varint(data, at)
        scripts.append(data[at:at + n])
        at += n
    return at + 4, script_sig, scripts


def _output_scripts(coinbase):
    """The output scripts of a legacy coinbase transaction."""
    return _legacy_tx(coinbase, 0)[2]


def _hash_list(data, at):
    n, at = _varint(data, at)
    return [data[at + 32 * i:at + 32 * (i + 1)] for i in range(n)], at + 32 * n


def _climb(leaf, branch, index=0):
    """The root from ``leaf`` at ``index`` and its ``branch`` (index 0: the coinbase's path)."""
    for sibling in branch:
        leaf = _dsha(sibling + leaf) if index & 1 else _dsha(leaf + sibling)
        index >>= 1
    return leaf


def _bits_target(bits):
    exponent, mantissa = bits >> 24, bits & 0xFFFFFF
    return mantissa << (8 * (exponent - 3))


def verify_auxpow(raw, block_hash, chain_id, target):
    """
    ``None`` when ``raw`` (AuxPoW bytes) proves work for ``block_hash``
    (internal order) of chain ``chain_id`` at ``target``, else the reason
    Namecoin Core would give.
    """
    try:
        end, script_sig, _ = _legacy_tx(raw, 0)
        coinbase = raw[:end]
        at = end + 32  # the parent block hash, not used by the check
        coinbase_branch, at = _hash_list(raw, at)
        coinbase_index = struct.unpack_from("<i", raw, at)[0]
        chain_branch, at = _hash_list(raw, at + 4)
        chain_index = struct.unpack_from("<i", raw, at)[0]
        header = raw[at + 4:at + 84]
        if len(header) != 80 or at + 84 != len(raw) or script_sig is None:
            return "bad-auxpow-encoding"
    except (IndexError, KeyError, struct.error):
        return "bad-auxpow-encoding"
    if int.from_bytes(_dsha(header), "little") > target:
        return "high-hash (parent PoW below the aux target)"
    if coinbase_index != 0:
        return "AuxPow is not a generate"
    if struct.unpack_from("<I", header, 0)[0] >> 16 == chain_id:
        return "Aux POW parent has our chain ID"
    if len(chain_branch) > 30:
        return "Aux POW chain merkle branch too long"
    root = _climb(block_hash, chain_branch, chain_index)[::-1]
    if _climb(_dsha(coinbase), coinbase_branch, coinbase_index) != header[36:68]:
        return "Aux POW merkle root incorrect"
    pc = script_sig.find(root)
    if pc < 0:
        return "Aux POW missing chain merkle root in parent coinbase"
    head = script_sig.find(b"\xfa\xbemm")
    if head >= 0:
        if script_sig.find(b"\xfa\xbemm", head + 1) >= 0:
            return "Multiple merged mining headers in coinbase"
        if head + 4 != pc:
            return "Merged mining header is not just before chain merkle root"
    elif pc > 20:
        return "Aux POW chain merkle root must start in the first 20 bytes of the parent coinbase"
    tail = script_sig[pc + 32:pc + 40]
    if len(tail) < 8:
        return "Aux POW missing chain merkle tree size and nonce in parent coinbase"
    size, nonce = struct.unpack("<II", tail)
    if size != 1 << len(chain_branch):
        return "Aux POW merkle branch size does not match parent coinbase"
    rand = (nonce * 1103515245 + 12345) % 2**32
    rand = (rand + chain_id) % 2**32
    rand = (rand * 1103515245 + 12345) % 2**32
    if chain_index != rand % size:
        return "Aux POW wrong index"
    return None


class _StandIn(resource.Resource):
    """What the stand-ins share: listening, stopping, call and submission records."""

    isLeaf = True

    def __init__(self, name, reactor=None):
        super().__init__()
        self.name = name
        self.accepted = []
        self.rejected = []
        self.calls = []
        self.reactor = reactor or default_reactor
        self.port = None
        self._factory = WrappingFactory(server.Site(self))
        self._port_number = 0

    async def start(self, port=0):
        """Listen on 127.0.0.1 (``port`` 0: any free port, kept for restarts)."""
        endpoint = TCP4ServerEndpoint(self.reactor, port or self._port_number, interface="127.0.0.1")
        self.port = await endpoint.listen(self._factory)
        self._port_number = self.port.getHost().port
        return self._port_number

    @property
    def port_number(self):
        return self._port_number

    async def serve(self, testcase):
        """Listen until ``testcase``'s cleanup; returns ``node_entry()``."""
        await self.start()
        testcase.addCleanup(self.stop)
        return self.node_entry()

    def node_entry(self):
        """The ``NodeEntry`` a jobmaster reaches this daemon by."""
        return NodeEntry(host="127.0.0.1", port=self._port_number, user="aux", password="aux")

    async def stop(self):
        """Stop listening and cut every connection (a daemon that died)."""
        if self.port is not None:
            port, self.port = self.port, None
            await port.stopListening()
        for protocol in list(self._factory.protocols):
            protocol.transport.abortConnection()

    def coin_config(self, **extra):
        """The ``aux_coin`` entry for this daemon."""
        entry = {"name": self.name, "host": "127.0.0.1", "port": self._port_number,
                 "user": "aux", "pass": "aux"}
        entry.update(extra)
        return entry

    def _json(self, request, value):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(value).encode()


class AuxDaemonStandIn(_StandIn):
    """
    One aux chain.  ``bits`` sets its difficulty (``target`` overrides it);
    ``accepted`` and ``rejected`` list ``(display hash, reason or None)`` of
    every submission; ``delay`` (seconds) slows every answer.
    """

    def __init__(self, name, chain_id, bits=0x207FFFFF, target=None, height=100, reactor=None):
        super().__init__(name, reactor)
        self.chain_id = chain_id
        self.bits = bits
        self.target = target if target is not None else _bits_target(bits)
        self.height = height
        self.delay = 0.0
        self._blocks = {}
        self._later = set()

    # -- the chain -----------------------------------------------------------

    def _block(self):
        """The block at the current height (one per height, as a node caches it)."""
        if self.height not in self._blocks:
            seed = f"{self.name}/{self.height}".encode()
            self._blocks[self.height] = _dsha(seed)
        return self._blocks[self.height]

    def _reply(self):
        block = self._block()
        return {
            "hash": block[::-1].hex(),
            "chainid": self.chain_id,
            "previousblockhash": _dsha(f"{self.name}/{self.height - 1}".encode())[::-1].hex(),
            "coinbasevalue": 5000000000,
            "bits": format(self.bits, "08x"),
            "height": self.height + 1,
            "_target": self.target.to_bytes(32, "little").hex(),
        }

    def submit(self, display_hash, auxpow_hex):
        block = self._block()
        if display_hash != block[::-1].hex():
            reason = "stale or unknown block hash"
        else:
            try:
                raw = bytes.fromhex(auxpow_hex)
            except ValueError:
                raw = b""
            reason = verify_auxpow(raw, block, self.chain_id, self.target)
        if reason is None:
            self.accepted.append((display_hash, None))
            self.height += 1
            return True
        self.rejected.append((display_hash, reason))
        return False

    # -- JSON-RPC --------------------------------------------------------------

    def _call(self, method, params):
        if method == "getblockcount":
            return self.height
        if method == "getauxblock" and not params:
            return self._reply()
        if method == "createauxblock" and len(params) == 1:
            return self._reply()
        if method in ("getauxblock", "submitauxblock") and len(params) == 2:
            return self.submit(*params)
        raise LookupError(f"Method not found: {method}")

    def render_POST(self, request):
        try:
            body = json.loads(request.content.read())
            method, params, request_id = body["method"], body.get("params") or [], body.get("id")
        except (ValueError, KeyError, TypeError):
            request.setResponseCode(400)
            return b"{}"
        self.calls.append(method)
        try:
            reply = {"result": self._call(method, params), "error": None, "id": request_id}
        except LookupError as e:
            request.setResponseCode(404)
            reply = {"result": None, "error": {"code": -32601, "message": str(e)}, "id": request_id}
        data = self._json(request, reply)
        if not self.delay:
            return data

        def later():
            self._later.discard(call)
            if not request.finished and not request._disconnected:
                request.write(data)
                request.finish()

        call = self.reactor.callLater(self.delay, later)
        self._later.add(call)
        return server.NOT_DONE_YET

    async def stop(self):
        """As any stand-in's, and the answers still delayed are dropped."""
        for call in list(self._later):
            call.cancel()
        self._later.clear()
        await super().stop()


class RskStandIn(_StandIn):
    """
    An RSK node STAND-IN (rskj's ``mnr_*`` and the ``eth_*`` calls the
    jobmaster makes).  ``mnr_submitBitcoinBlockPartialMerkle`` is checked as
    rskj checks it: the coinbase's last ``RSKBLOCK:`` tag names the current
    work, the coinbase txid and branch (internal order) rebuild the header's
    merkle root in a tree of the given transaction count (hex, coinbase
    included: the branch must be exactly as long as that tree is high), and
    the header's hash meets the target.
    """

    def __init__(self, name="RSK", target=2**256 - 1, reactor=None):
        super().__init__(name, reactor)
        self.target = target
        self.number = 500

    def work_hash(self):
        return _dsha(f"rsk/{self.number}".encode())

    def check(self, work_hash, header_hex, coinbase_hex, hashes_text, count_hex):
        header, coinbase = bytes.fromhex(header_hex), bytes.fromhex(coinbase_hex)
        if bytes.fromhex(work_hash) != self.work_hash():
            return "work not found"
        tagged = [s for s in _output_scripts(coinbase) if b"RSKBLOCK:" in s]
        if not tagged or not tagged[-1].endswith(b"RSKBLOCK:" + self.work_hash()):
            return "coinbase has no RSKBLOCK tag for the work"
        hashes = [bytes.fromhex(h) for h in hashes_text.split()]
        count = int(count_hex, 16)
        height = (count - 1).bit_length()
        if len(hashes) != height + 1:
            return f"{len(hashes)} merkle hashes for a tree of {count} transactions"
        if hashes[0] != _dsha(coinbase):
            return "first merkle hash is not the coinbase txid"
        if _climb(hashes[0], hashes[1:]) != header[36:68]:
            return "merkle root mismatch"
        if int.from_bytes(_dsha(header), "little") > self.target:
            return "header does not meet the RSK target"
        return None

    def render_POST(self, request):
        body = json.loads(request.content.read())
        method, params = body["method"], body.get("params") or []
        self.calls.append(method)
        if method == "eth_blockNumber":
            result = hex(self.number)
        elif method == "mnr_getWork":
            result = {"blockHashForMergedMining": "0x" + self.work_hash().hex(),
                      "target": "0x" + format(self.target, "064x"), "feesPaidToMiner": "0",
                      "notify": False,
                      "parentBlockHash": "0x" + _dsha(f"rsk-block/{self.number}".encode()).hex()}
        elif method == "eth_getBlockByHash":
            result = {"number": hex(self.number)}
        elif method == "mnr_submitBitcoinBlockPartialMerkle" and len(params) == 5:
            try:
                reason = self.check(*params)
            except (IndexError, ValueError, TypeError):
                reason = "bad encoding"
            if reason is None:
                self.accepted.append((params[0], None))
                self.number += 1
                word = b"IMPORTED_BEST"
            else:
                self.rejected.append((params[0], reason))
                word = b"INVALID_BLOCK"
            result = {"blockImportedResult": "0x" + word.hex(), "blockHash": "0x" + "00" * 32,
                      "blockIncludedHeight": hex(self.number)}
        else:
            return self._json(request, {"jsonrpc": "2.0", "id": body.get("id"), "result": None,
                                        "error": {"code": -32601, "message": "no such method"}})
        return self._json(request, {"jsonrpc": "2.0", "id": body.get("id"), "result": result})


class VcashStandIn(_StandIn):
    """
    A VCASH pool API STAND-IN: ``GET /v1/pool/getauxblock`` gives the
    current header hash, height and bits; ``POST /v1/pool/submitauxblock``
    is checked: the coinbase pays the VCASH output for the header hash, the
    branch (display order, concatenated) rebuilds the header's merkle root,
    and the header's hash meets the target of ``bits``.
    """

    def __init__(self, name="VCASH", bits=0x207FFFFF, reactor=None):
        super().__init__(name, reactor)
        self.bits = bits
        self.target = _bits_target(bits)
        self.height = 900

    def header_hash(self):
        return _dsha(f"vcash/{self.height}".encode())

    def check(self, body):
        if body.get("header_hash") != self.header_hash().hex():
            return "unknown header hash"
        header, coinbase = bytes.fromhex(body["btc_header"]), bytes.fromhex(body["btc_coinbase"])
        if b"\x6a\x24\xb9\xe1\x1b\x6d" + self.header_hash() not in _output_scripts(coinbase):
            return "coinbase has no VCASH output"
        text = body["btc_merkle_branch"]
        branch = [bytes.fromhex(text[i:i + 64])[::-1] for i in range(0, len(text), 64)]
        if _climb(_dsha(coinbase), branch) != header[36:68]:
            return "merkle root mismatch"
        if int.from_bytes(_dsha(header), "little") > self.target:
            return "header does not meet the VCASH target"
        return None

    def render_GET(self, request):
        self.calls.append(request.path.decode())
        return self._json(request, {"height": self.height, "cur_hash": self.header_hash().hex(),
                                    "bits": self.bits})

    def render_POST(self, request):
        self.calls.append(request.path.decode())
        body = json.loads(request.content.read())
        try:
            reason = self.check(body)
        except (IndexError, ValueError, TypeError, KeyError):
            reason = "bad encoding"
        if reason is None:
            self.accepted.append((body["header_hash"], None))
            self.height += 1
            return self._json(request, {"result": True})
        self.rejected.append((body.get("header_hash"), reason))
        return self._json(request, {"error": reason})
