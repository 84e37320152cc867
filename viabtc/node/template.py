# -*- test-case-name: tests.node.test_template -*-
"""
Block templates: the validated value (``Template``) and the service that
keeps the current one (``TemplateSource``).

A template is checked field by field when it arrives, so that a node bug or
an unexpected node (bcoin, btcd, a proxy) gives one clear error naming the
field instead of a job that can never make a valid block.

The source notices a new tip within about a second, three ways at once:

- a long-polling ``getblocktemplate`` (BIP22 ``longpollid``), which the node
  holds until its tip (or, for bitcoind, its mempool) changes;
- a cheap ``getbestblockhash`` every ``tip_interval`` seconds, because long
  polls are lost with connections and bcoin forgets to answer some (it only
  wakes pollers while it has a cached block attempt);
- ``blocknotify()``, for bitcoind's ``-blocknotify`` through the CLI.

The seed could apply a clean template after a later non-clean one (§12.13).
Here every request takes a generation number when sent (a long poll when
answered: that is when the node produced it), and an answer older than the
current template, or from a node lagging behind the tip, never replaces it.
"""

import attrs
from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.bitcoin.target import bits_to_target
from viabtc.bitcoin.transaction import WITNESS_COMMITMENT_HEADER
from viabtc.node.jsonrpc import NodeCallError, NodeTimeout

#: What we tell the node we can mine (ref §3.2); the node answers with the
#: rules actually in force, which callers must follow.  Bitcoin Core refuses
#: a signet template to a client without "signet" and ignores rules it does
#: not know elsewhere (so does bcoin).
TEMPLATE_RULES = ("segwit", "signet")

#: All the bitcoin there will ever be, in satoshis: a bound for values.
MAX_MONEY = 21_000_000 * 100_000_000


class TemplateError(ValueError):
    """A ``getblocktemplate`` result that cannot be mined on; says which field."""

    def __init__(self, field, problem):
        super().__init__(f"getblocktemplate {field}: {problem}")
        self.field = field


def _int(obj, field, low, high, default=None, where=""):
    value = obj.get(field, default)
    if value is None:
        raise TemplateError(where + field, "missing")
    if not isinstance(value, int) or isinstance(value, bool):
        raise TemplateError(where + field, f"not an integer: {value!r}")
    if not low <= value <= high:
        raise TemplateError(where + field, f"{value} is outside {low}..{high}")
    return value


def _hex(obj, field, allow_empty=False, where=""):
    value = obj.get(field)
    if not isinstance(value, str):
        raise TemplateError(where + field, f"missing or not a hex string: {value!r:.80}")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise TemplateError(where + field, f"not hex: {value[:80]!r}") from None
    if not data and not allow_empty:
        raise TemplateError(where + field, "empty")
    return data


def _hash(obj, field, where=""):
    try:
        return hash_from_display_hex(obj.get(field))
    except ValueError:
        raise TemplateError(where + field, f"not a 64-digit hex hash: {obj.get(field)!r:.80}") from None


@attrs.frozen
class TemplateTransaction:
    """One template transaction: ids in internal order, raw data as given."""

    txid: bytes
    #: the witness txid; equal to ``txid`` for a transaction without witness
    wtxid: bytes
    data: bytes
    fee: int | None = None
    weight: int | None = None
    sigops: int | None = None
    #: 1-based indexes of template transactions this one spends
    depends: tuple = ()

    @classmethod
    def from_rpc(cls, number, entry):
        """
        Transaction ``number`` (1-based, as ``depends`` counts) of a template.

        A mainnet template has thousands of these, decoded on the way from
        the node to the miners: the common shape (all fields present and
        well-typed, no ``depends``) is taken in one pass, and anything else
        goes through ``checked_from_rpc``, which gives the same value or
        names the bad field.
        """
        if type(entry) is dict:
            data_hex = entry.get("data")
            txid_hex = entry.get("txid")
            hash_hex = entry.get("hash")
            fee = entry.get("fee")
            weight = entry.get("weight")
            sigops = entry.get("sigops")
            if (type(data_hex) is str and type(txid_hex) is str and type(hash_hex) is str
                    and len(txid_hex) == 64 and len(hash_hex) == 64
                    and type(fee) is int and 0 <= fee <= MAX_MONEY
                    and type(weight) is int and 0 <= weight <= 2**32
                    and type(sigops) is int and 0 <= sigops <= 2**32
                    and not entry.get("depends")):
                try:
                    data = bytes.fromhex(data_hex)
                    txid = hash_from_display_hex(txid_hex)
                    wtxid = hash_from_display_hex(hash_hex)
                except ValueError:
                    pass
                else:
                    if data and type(entry.get("depends", [])) is list:
                        return cls(txid, wtxid, data, fee, weight, sigops, ())
        return cls.checked_from_rpc(number, entry)

    @classmethod
    def checked_from_rpc(cls, number, entry):
        """``from_rpc`` field by field: the reference, and the path that names a bad field."""
        where = f"transactions[{number - 1}]."
        if not isinstance(entry, dict):
            raise TemplateError(where[:-1], f"not an object: {entry!r:.80}")
        data = _hex(entry, "data", where=where)
        # Ref §3.5: "txid", falling back to "hash" for nodes without it.
        txid = _hash(entry, "txid" if "txid" in entry else "hash", where=where)
        wtxid = _hash(entry, "hash", where=where) if "hash" in entry else txid
        optional = {
            field: _int(entry, field, 0, high, where=where)
            for field, high in (("fee", MAX_MONEY), ("weight", 2**32), ("sigops", 2**32))
            if entry.get(field) is not None
        }
        depends = entry.get("depends", [])
        if not isinstance(depends, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i < number for i in depends
        ):
            raise TemplateError(
                where + "depends", f"not a list of earlier transaction numbers: {depends!r:.80}"
            )
        return cls(txid=txid, wtxid=wtxid, data=data, depends=tuple(depends), **optional)


@attrs.frozen
class Template:
    """
    One ``getblocktemplate`` answer, checked.  Hashes are internal order;
    ``coinbaseaux`` is the template's ``coinbaseaux`` values concatenated
    (as the seed puts them in the scriptSig); ``received_at`` is the
    reactor's time when the answer arrived.
    """

    version: int
    previous_hash: bytes
    height: int
    bits: int
    target: int
    curtime: int
    mintime: int
    coinbase_value: int
    coinbaseaux: bytes
    transactions: tuple
    default_witness_commitment: bytes | None
    rules: tuple
    longpollid: str | None
    received_at: float = 0.0
    #: the signet's challenge script (``signet_challenge``), None elsewhere
    signet_challenge: bytes | None = None

    @property
    def segwit_active(self):
        """True when the node says segwit is in force (``rules`` names it)."""
        return "segwit" in self.rules or "!segwit" in self.rules

    @property
    def signet(self):
        """True when the block must carry a signet solution (BIP325)."""
        return "signet" in self.rules or "!signet" in self.rules

    @classmethod
    def from_rpc(cls, result, received_at=0.0):
        """The template in a ``getblocktemplate`` result; ``TemplateError`` if unusable."""
        if not isinstance(result, dict):
            raise TemplateError("result", f"not an object: {result!r:.80}")
        bits_text = result.get("bits")
        if not isinstance(bits_text, str) or len(bits_text) != 8:
            raise TemplateError("bits", f"not 8 hex digits: {bits_text!r}")
        try:
            bits = int(bits_text, 16)
            target = bits_to_target(bits)
        except ValueError as e:
            raise TemplateError("bits", f"{bits_text!r}: {e}") from None
        if target == 0:
            raise TemplateError("bits", f"{bits_text!r} encodes a zero target")
        target_text = result.get("target")
        if target_text is not None:
            if not isinstance(target_text, str) or len(target_text) != 64:
                raise TemplateError("target", f"not 64 hex digits: {target_text!r}")
            try:
                stated = int(target_text, 16)
            except ValueError:
                raise TemplateError("target", f"not hex: {target_text!r}") from None
            if stated != target:
                raise TemplateError("target", f"{target_text} disagrees with bits {bits_text}")
        aux = result.get("coinbaseaux") or {}
        if not isinstance(aux, dict):
            raise TemplateError("coinbaseaux", f"not an object: {aux!r}")
        coinbaseaux = b"".join(_hex(aux, key, True, where="coinbaseaux.") for key in aux)
        txs = result.get("transactions")
        if not isinstance(txs, list):
            raise TemplateError("transactions", f"missing or not a list: {txs!r:.80}")
        commitment = None
        if result.get("default_witness_commitment") is not None:
            commitment = _hex(result, "default_witness_commitment")
            if len(commitment) != 38 or not commitment.startswith(WITNESS_COMMITMENT_HEADER):
                raise TemplateError(
                    "default_witness_commitment", f"not a BIP141 commitment script: {commitment.hex()}"
                )
        rules = result.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise TemplateError("rules", f"not a list of strings: {rules!r}")
        longpollid = result.get("longpollid")
        if longpollid is not None and not isinstance(longpollid, str):
            raise TemplateError("longpollid", f"not a string: {longpollid!r}")
        curtime = _int(result, "curtime", 0, 0xFFFFFFFF)
        challenge = None
        if "signet" in rules or "!signet" in rules:
            challenge = _hex(result, "signet_challenge")
        return cls(
            version=_int(result, "version", 0, 0xFFFFFFFF),
            previous_hash=_hash(result, "previousblockhash"),
            height=_int(result, "height", 1, 0x7FFFFFFF),
            bits=bits,
            target=target,
            curtime=curtime,
            mintime=_int(result, "mintime", 0, curtime, default=0),
            coinbase_value=_int(result, "coinbasevalue", 0, MAX_MONEY),
            coinbaseaux=coinbaseaux,
            transactions=tuple(TemplateTransaction.from_rpc(i + 1, tx) for i, tx in enumerate(txs)),
            default_witness_commitment=commitment,
            rules=tuple(rules),
            longpollid=longpollid,
            received_at=received_at,
            signet_challenge=challenge,
        )


class TemplateSource(service.Service):
    """
    Keeps ``current``, the newest template of the node group, and tells
    observers ``observer(template, is_new_tip)`` about each one it applies.

    ``is_new_tip`` is True for the first template, when the template builds
    on another block than the previous one, and when the refresh that
    fetched it asked for ``clean`` (work on the old template must stop,
    e.g. leaving empty-block mode on the same tip, ref §12.12).
    """

    log = Logger()

    def __init__(self, nodes, reactor=None, *, tip_interval=0.5, longpoll=True,
                 longpoll_timeout=600.0, timeout=10.0, retry_delay=1.0, rules=TEMPLATE_RULES):
        if reactor is None:
            from twisted.internet import reactor
        self.nodes = nodes
        self.current = None
        #: the node's best block hash as the tip check last saw it (internal)
        self.best_hash = None
        self.tip_interval = tip_interval
        self.longpoll = longpoll
        self.longpoll_timeout = longpoll_timeout
        self.timeout = timeout
        self.retry_delay = retry_delay
        self._rules = list(rules)
        self._reactor = reactor
        self._observers = []
        self._generation = 0
        self._applied = 0
        self._in_flight = set()
        self._tip_loop = None
        self._tip_check = None
        self._tip_refresh = None
        self._tip_failing = False
        self._longpoll_call = None
        self._longpoll_later = None
        self._longpoll_failing = False

    # -- observers ---------------------------------------------------------

    def add_observer(self, observer):
        """Call ``observer(template, is_new_tip)`` for every applied template."""
        self._observers.append(observer)

    def remove_observer(self, observer):
        self._observers.remove(observer)

    # -- service -----------------------------------------------------------

    def startService(self):
        super().startService()
        self._tip_loop = task.LoopingCall(self._check_tip)
        self._tip_loop.clock = self._reactor
        self._tip_loop.start(self.tip_interval, now=False)
        self.refresh(clean=True).addErrback(lambda _: None)

    def stopService(self):
        super().stopService()
        if self._tip_loop is not None and self._tip_loop.running:
            self._tip_loop.stop()
        if self._longpoll_later is not None and self._longpoll_later.active():
            self._longpoll_later.cancel()
        self._longpoll_later = None
        for d in list(self._in_flight):
            d.cancel()

    def _track(self, d):
        self._in_flight.add(d)

        def done(result):
            self._in_flight.discard(d)
            return result

        d.addBoth(done)
        return d

    # -- fetching ----------------------------------------------------------

    def refresh(self, clean=False):
        """
        Fetch a template now.  A Deferred with the current template once the
        answer is handled (the new one, or a newer one that overtook it), or
        failing with a ``NodeCallError`` or ``TemplateError`` (also logged).
        """
        self._generation += 1
        generation = self._generation
        d = self.nodes.call("getblocktemplate", {"rules": self._rules}, timeout=self.timeout)
        d.addCallback(self._answered, generation, clean)
        d.addErrback(self._refresh_failed)
        return self._track(d)

    def _answered(self, result, generation, clean):
        template = Template.from_rpc(result, received_at=self._reactor.seconds())
        return self._apply(template, generation, clean)

    def _refresh_failed(self, failure):
        if not failure.check(defer.CancelledError):
            self.log.error("no template: {error}", error=failure.value)
        return failure

    def _apply(self, template, generation, clean):
        current = self.current
        if current is not None and template.height <= current.height:
            if generation <= self._applied:
                self.log.debug("dropped a template older than the current one (height {height})",
                               height=template.height)
                return current
            if template.height < current.height and template.previous_hash != self.best_hash:
                self.log.warn("dropped a template for height {height} below the current {current}",
                              height=template.height, current=current.height)
                return current
        self._applied = max(self._applied, generation)
        is_new_tip = clean or current is None or template.previous_hash != current.previous_hash
        self.current = template
        if is_new_tip:
            self.log.info("template for height {height} ({count} transactions)",
                          height=template.height, count=len(template.transactions))
        for observer in list(self._observers):
            try:
                observer(template, is_new_tip)
            except Exception:
                self.log.failure("template observer {observer!r} failed", observer=observer)
        self._schedule_longpoll(0)
        return template

    # -- long polling ------------------------------------------------------

    def _schedule_longpoll(self, delay):
        if (not self.running or not self.longpoll or self._longpoll_call is not None
                or (self._longpoll_later is not None and self._longpoll_later.active())):
            return
        self._longpoll_later = self._reactor.callLater(delay, self._start_longpoll)

    def _start_longpoll(self):
        self._longpoll_later = None
        current = self.current
        if not self.running or current is None or current.longpollid is None:
            return
        # Straight to the preferred node: a long poll that times out is
        # normal and must not count as that node failing.
        client = self.nodes.primary
        params = {"rules": self._rules, "longpollid": current.longpollid}
        d = client.call("getblocktemplate", params, timeout=self.longpoll_timeout)
        self._longpoll_call = d
        d.addCallbacks(self._longpoll_answered, self._longpoll_failed)
        self._track(d)

    def _longpoll_answered(self, result):
        self._longpoll_call = None
        self._longpoll_failing = False
        self._generation += 1
        try:
            template = Template.from_rpc(result, received_at=self._reactor.seconds())
        except TemplateError as e:
            self.log.error("no template from long poll: {error}", error=e)
            self._schedule_longpoll(self.retry_delay)
            return
        if self._apply(template, self._generation, False) is not template:
            # Dropped (a lagging node): do not ask again at once.
            self._schedule_longpoll(self.retry_delay)

    def _longpoll_failed(self, failure):
        self._longpoll_call = None
        if failure.check(defer.CancelledError):
            return
        if failure.check(NodeTimeout):
            self.log.debug("long poll timed out; polling again")
        elif failure.check(NodeCallError):
            # Once per outage: the tip check keeps working meanwhile.
            if not self._longpoll_failing:
                self._longpoll_failing = True
                self.log.warn("long poll failed: {error}", error=failure.value)
        else:
            self.log.failure("long poll failed", failure)
        self._schedule_longpoll(self.retry_delay)

    # -- tip checks --------------------------------------------------------

    def blocknotify(self):
        """A block arrived (bitcoind ``-blocknotify``): check the tip now."""
        self.log.info("blocknotify")
        done = defer.Deferred()
        self._check_tip().addBoth(lambda _: done.callback(None))
        return done

    def _check_tip(self):
        """
        Ask for the best block hash; refresh when the current template does
        not build on it.  The returned Deferred never fails.
        """
        if self._tip_check is not None:
            return self._tip_check
        d = self.nodes.call("getbestblockhash", timeout=max(self.tip_interval, 1.0))
        d.addCallback(self._got_tip)
        d.addErrback(self._tip_failed)
        self._tip_check = self._track(d)

        def done(result):
            self._tip_check = None
            return result

        d.addBoth(done)
        return d

    def _got_tip(self, display_hash):
        try:
            tip = hash_from_display_hex(display_hash)
        except ValueError:
            self.log.error("getbestblockhash answered {value!r}, not a hash", value=display_hash)
            return
        if self._tip_failing:
            self._tip_failing = False
            self.log.info("tip check works again")
        self.best_hash = tip
        current = self.current
        if (current is None or current.previous_hash != tip) and self._tip_refresh is None:
            d = self.refresh()
            self._tip_refresh = d

            def done(result):
                self._tip_refresh = None

            d.addBoth(done)

    def _tip_failed(self, failure):
        if failure.check(defer.CancelledError):
            return
        if not failure.check(NodeCallError):
            self.log.failure("tip check failed", failure)
        elif not self._tip_failing:
            self._tip_failing = True
            self.log.warn("tip check failed: {error}", error=failure.value)


__all__ = ["Template", "TemplateTransaction", "TemplateError", "TemplateSource", "TEMPLATE_RULES"]
