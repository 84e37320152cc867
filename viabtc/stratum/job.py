# -*- test-case-name: tests.stratum.test_job -*-
"""
The job a jobmaster pushes to gateways (ref §3.6), and its prepared form.

``Job`` is the wire value: every key of the seed's cmd-1 JSON body, checked
field by field on the way in so that a bad job is refused with one clear
``JobError`` instead of failing later inside a share check; ``read_json``
reads a job from another host, where a bad aux entry or optional key of ours
costs only itself, not the job.  ``PreparedJob`` is
what the share hot path and the notify fan-out need, computed once per job:
header fields as integers and bytes, the merkle branch as bytes, the block
target as an integer and the ``mining.notify`` line rendered once, split
around the per-session coinbase1.
"""

import json
import re

import attrs

from viabtc.bitcoin.hashing import hash_from_display_hex
from viabtc.bitcoin.target import DIFF1_TARGET, bits_to_target
from viabtc.stratum.share import NTIME_WINDOW

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*\Z")
_JOB_ID = re.compile(r"[0-9a-fA-F]{1,4}\Z")
_UINT32_MAX = 0xFFFFFFFF


class JobError(ValueError):
    """A job body that cannot be used; the message names the offending key."""


def job_id_number(job_id):
    """
    The numeric value of a job id: lowercase hex of a 16-bit counter, 1 to 4
    characters (ref §3.3).  It goes into every coinbase scriptSig, so an id
    that does not fit is an error, not something to truncate.
    """
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise JobError(f"job_id: expected 1..4 hex characters, got {job_id!r}")
    return int(job_id, 16)


@attrs.frozen
class Aux:
    """A merged-mining target: a share whose hash is at or below it is an aux block."""

    aux_name: str
    aux_hash: str
    #: display-order (big-endian) hex of a 32-byte target
    aux_target: str

    def to_dict(self):
        return {"aux_name": self.aux_name, "aux_hash": self.aux_hash, "aux_target": self.aux_target}


@attrs.frozen
class Job:
    """
    One job exactly as the seed's jobmaster serialises it (ref §3.6), plus
    optional keys of ours (``segwit``, ``network``, ``mintime``: the earliest
    valid block time, the template's ``mintime`` with BIP94's timewarp floor
    applied) that C gateways ignore and
    that are only written when set.
    """

    job_id: str
    version: int
    curtime: int
    nbits: int
    height: int
    #: display-order hex (as ``getblocktemplate`` gives it)
    prevhash: str
    #: display-order hex, 64 characters
    target: str
    pool_name: str
    coinbase_message: str
    coinbase_account: bool
    #: hex pushed into the scriptSig (may be empty)
    coinbaseaux: str
    coinbase1: str
    coinbase2: str
    clean_jobs: bool
    main_name: str
    #: legacy, normally ``""``; the seed's mineragent still requires the key
    aux_target: str
    #: internal-order hex of each branch hash
    merkle_branch: tuple = attrs.field(converter=tuple)
    auxes: tuple = attrs.field(default=(), converter=tuple)
    segwit: bool | None = None
    network: str | None = None
    mintime: int | None = None

    @classmethod
    def from_json(cls, data):
        """
        Build a ``Job`` from a cmd-1 body (``bytes``, ``str`` or an already
        decoded ``dict``), checking every key (ref §4.8: all keys required
        except ``auxes``; aux targets 32 bytes).  Raises ``JobError``.
        """
        job, dropped = cls.read_json(data)
        if dropped:
            raise JobError(dropped[0])
        return job

    @classmethod
    def read_json(cls, data):
        """
        Like ``from_json``, for a job from another host: a bad aux entry or a
        bad optional key of ours costs only itself.  Returns ``(job,
        dropped)``, ``dropped`` naming each part left out and why.  Raises
        ``JobError`` for a bad required key, without which no share can be
        checked.
        """
        if isinstance(data, (bytes, bytearray, str)):
            try:
                data = json.loads(data)
            except ValueError as e:
                raise JobError(f"job body is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise JobError("job body is not a JSON object")
        job_id = _field(data, "job_id", str)
        job_id_number(job_id)
        fields = dict(
            job_id=job_id,
            version=_uint32(data, "version"),
            curtime=_uint32(data, "curtime"),
            nbits=_uint32(data, "nbits"),
            height=_height(data),
            prevhash=_hash_hex(data, "prevhash"),
            target=_hash_hex(data, "target"),
            pool_name=_field(data, "pool_name", str),
            coinbase_message=_field(data, "coinbase_message", str),
            coinbase_account=_field(data, "coinbase_account", bool),
            coinbaseaux=_hex(data, "coinbaseaux", allow_empty=True),
            coinbase1=_hex(data, "coinbase1"),
            coinbase2=_hex(data, "coinbase2"),
            clean_jobs=_field(data, "clean_jobs", bool),
            main_name=_field(data, "main_name", str),
            aux_target=_aux_target(data),
            merkle_branch=_branch(data),
        )
        dropped = []
        fields["auxes"] = _auxes(data, dropped)
        for key, read in (("segwit", lambda: _field(data, "segwit", bool)),
                          ("network", lambda: _field(data, "network", str)),
                          ("mintime", lambda: _uint32(data, "mintime"))):
            if key in data:
                try:
                    fields[key] = read()
                except JobError as e:
                    dropped.append(str(e))
        return cls(**fields), dropped

    def to_dict(self):
        """The seed's key order and types; our optional keys only when set."""
        d = {
            "job_id": self.job_id,
            "version": self.version,
            "curtime": self.curtime,
            "nbits": self.nbits,
            "height": self.height,
            "prevhash": self.prevhash,
            "target": self.target,
            "pool_name": self.pool_name,
            "coinbase_message": self.coinbase_message,
            "coinbase_account": self.coinbase_account,
            "coinbaseaux": self.coinbaseaux,
            "coinbase1": self.coinbase1,
            "coinbase2": self.coinbase2,
            "clean_jobs": self.clean_jobs,
            "main_name": self.main_name,
            "aux_target": self.aux_target,
            "merkle_branch": list(self.merkle_branch),
            "auxes": [aux.to_dict() for aux in self.auxes],
        }
        if self.segwit is not None:
            d["segwit"] = self.segwit
        if self.network is not None:
            d["network"] = self.network
        if self.mintime is not None:
            d["mintime"] = self.mintime
        return d

    def to_json(self):
        """Compact UTF-8 JSON, the body of a cmd-1 packet and of a raw agent job line."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def _field(data, key, kind):
    if key not in data:
        raise JobError(f"{key}: missing")
    value = data[key]
    # bool is an int subclass: never let true stand for 1 or 1 for true.
    if type(value) is not kind:
        raise JobError(f"{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _uint32(data, key):
    value = _field(data, key, int)
    if not 0 <= value <= _UINT32_MAX:
        raise JobError(f"{key}: {value} does not fit 32 bits")
    return value


def _height(data):
    value = _field(data, "height", int)
    if not 0 <= value < 2**31:
        raise JobError(f"height: {value} out of range")
    return value


def _hex(data, key, allow_empty=False):
    value = _field(data, key, str)
    if not _HEX.match(value):
        raise JobError(f"{key}: not an even-length hex string")
    if not value and not allow_empty:
        raise JobError(f"{key}: empty")
    return value


def _hash_hex(data, key):
    value = _hex(data, key)
    if len(value) != 64:
        raise JobError(f"{key}: expected 64 hex characters, got {len(value)}")
    return value


def _aux_target(data):
    value = _hex(data, "aux_target", allow_empty=True)
    if value and len(value) != 64:
        raise JobError(f"aux_target: expected \"\" or 64 hex characters, got {len(value)}")
    return value


def _branch(data):
    branch = _field(data, "merkle_branch", list)
    for i, item in enumerate(branch):
        if type(item) is not str or len(item) != 64 or not _HEX.match(item):
            raise JobError(f"merkle_branch[{i}]: expected 64 hex characters")
    return branch


def _auxes(data, dropped):
    """The good aux entries; each bad one (or a bad ``auxes``) is named in ``dropped``."""
    if "auxes" not in data:
        return ()
    try:
        auxes = _field(data, "auxes", list)
    except JobError as e:
        dropped.append(str(e))
        return ()
    result = []
    for i, item in enumerate(auxes):
        if type(item) is not dict:
            dropped.append(f"auxes[{i}]: expected an object")
            continue
        try:
            result.append(
                Aux(
                    aux_name=_field(item, "aux_name", str),
                    aux_hash=_field(item, "aux_hash", str),
                    aux_target=_hash_hex(item, "aux_target"),
                )
            )
        except JobError as e:
            dropped.append(f"auxes[{i}].{e}")
    return tuple(result)


def notify_prevhash(prevhash):
    """
    The ``mining.notify`` form of a display-order prevhash (Appendix A):
    internal order with each 4-byte word byte-swapped, which is the same as
    the display bytes with the order of their 4-byte words reversed.
    """
    display = bytes.fromhex(prevhash)
    return b"".join(display[i : i + 4] for i in range(28, -4, -4)).hex()


@attrs.frozen
class AuxTarget:
    """An aux chain's target as an integer, for the share check."""

    aux: Aux
    target: int


@attrs.frozen
class PreparedJob:
    """
    Everything the share check and the notify fan-out need for one job,
    computed once when the job arrives instead of once per share or session.
    Build it with ``PreparedJob.prepare(job, received)``, which raises
    ``JobError`` for a job no block could come from (bad nbits, a target
    that disagrees with nbits).
    """

    job: Job
    job_id: str
    #: ``job_id_number(job_id)``, the scriptSig's job part
    number: int
    version: int
    nbits: int
    curtime: int
    height: int
    clean: bool
    #: internal-order previous block hash, header bytes 4..35
    prevhash: bytes
    branch: tuple
    coinbase1: bytes
    coinbase2: bytes
    coinbaseaux: bytes
    #: the block target as an integer: a share hash at or below it is a block
    block_target: int
    #: ``DIFF1_TARGET / block_target``, for the pool's ``goal`` statistic
    block_difficulty: float
    aux_targets: tuple
    #: the notify line up to the opening quote of the session's coinbase1 hex
    notify_prefix: bytes
    #: the rest of the notify line with the job's own clean flag, newline included
    notify_suffix: bytes
    #: the same with clean=true, for a session's first job
    notify_suffix_clean: bytes
    #: when the job arrived (seconds, from the injected clock)
    received: float
    #: the lowest ntime a share may carry: ``NTIME_WINDOW`` below curtime,
    #: raised to the job's ``mintime`` (median time past, timewarp floor)
    ntime_min: int = 0
    #: a cache, not a value: the session-independent part of each real
    #: coinbase1 made for this job (``viabtc.stratum.coinbase``), so that
    #: a broadcast builds each account's scriptSig once, not once per session
    coinbase_heads: dict = attrs.field(factory=dict, eq=False, repr=False)
    #: the easiest aux target (-1 without aux chains): a share above it meets
    #: no aux target, so the share check compares once instead of per chain
    aux_max_target: int = -1

    @classmethod
    def prepare(cls, job, received):
        # The header carries nbits, so consensus judges a block by
        # bits_to_target(nbits); a job whose target says otherwise would make
        # us submit invalid blocks or miss real ones.
        try:
            block_target = bits_to_target(job.nbits)
        except ValueError as e:
            raise JobError(f"nbits: {e}") from None
        if block_target <= 0:
            raise JobError(f"nbits: {job.nbits:08x} gives a zero target")
        if int(job.target, 16) != block_target:
            raise JobError(f"target: {job.target} does not match nbits {job.nbits:08x}")
        head = json.dumps(
            {"id": None, "method": "mining.notify", "params": [job.job_id, notify_prevhash(job.prevhash)]},
            separators=(",", ":"),
        )
        # head ends with ']}'; reopen the params array after the prevhash.
        notify_prefix = (head[:-2] + ',"').encode()
        tail = json.dumps(
            [job.coinbase2, list(job.merkle_branch), f"{job.version:08x}", f"{job.nbits:08x}", f"{job.curtime:08x}"],
            separators=(",", ":"),
        )[1:-1]
        notify_suffix = ('",' + tail + (",true]}\n" if job.clean_jobs else ",false]}\n")).encode()
        notify_suffix_clean = ('",' + tail + ",true]}\n").encode()
        aux_targets = tuple(AuxTarget(aux, int(aux.aux_target, 16)) for aux in job.auxes)
        return cls(
            job=job,
            job_id=job.job_id,
            number=job_id_number(job.job_id),
            version=job.version,
            nbits=job.nbits,
            curtime=job.curtime,
            height=job.height,
            clean=job.clean_jobs,
            prevhash=hash_from_display_hex(job.prevhash),
            branch=tuple(bytes.fromhex(h) for h in job.merkle_branch),
            coinbase1=bytes.fromhex(job.coinbase1),
            coinbase2=bytes.fromhex(job.coinbase2),
            coinbaseaux=bytes.fromhex(job.coinbaseaux),
            block_target=block_target,
            block_difficulty=DIFF1_TARGET / block_target,
            aux_targets=aux_targets,
            aux_max_target=max((a.target for a in aux_targets), default=-1),
            notify_prefix=notify_prefix,
            notify_suffix=notify_suffix,
            notify_suffix_clean=notify_suffix_clean,
            received=received,
            ntime_min=max(job.curtime - NTIME_WINDOW, job.mintime or 0),
        )

    def notify_line(self, coinbase1_hex, clean=False):
        """The session's ``mining.notify`` line for its own coinbase1 (hex bytes)."""
        return b"".join(
            (self.notify_prefix, coinbase1_hex, self.notify_suffix_clean if clean else self.notify_suffix)
        )
