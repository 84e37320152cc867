# -*- test-case-name: tests.stratum.test_limits -*-
"""
The limits that keep a public Stratum port serving while it is attacked.

A pool's Stratum port is reachable by anyone, all day.  Without bounds one
host can take every file descriptor, hold connections open without ever
authorizing (slowloris), flood requests, or stop reading so that replies pile
up in memory.  Each limit here is a config key of the optional ``limits``
section with a default that an honest miner, or a proxy multiplexing a farm,
never reaches; when one bites the server logs it and counts it in the
factory's ``counts`` (``limit_*`` monitor keys, docs/security.md has the
table).

The request rate does not close a connection that exceeds it: a proxy
multiplexing a farm sends bursts far above any single miner's rate.  Above
the rate the connection is *throttled* (not read until the bucket has
refilled, so TCP slows the sender down; ``limit_throttle``), and only a
connection held back for ``throttle_time`` without once letting the bucket
fill again is closed as sustained abuse (``limit_rate``).

``Offenders`` is the memory of abuse: hosts whose connections were closed for
abuse collect strikes, and from ``ban_strikes`` on each further strike bans
the host for a doubling time.  It is pure (time is passed in) and bounded.
"""

import attrs

from viabtc.config import ConfigError, positive


@attrs.frozen
class Limits:
    """
    The Stratum server's abuse limits.  Line length (``svr.max_pkg_size``) and
    the idle timeout (``client_max_idle_time``) are seed keys and live in
    ``StratumSettings``.
    """

    #: live connections in all; further connects are closed at once
    max_connections: int = 100_000
    #: live connections from one IP address (farms behind NAT share one)
    max_connections_per_ip: int = 2_000
    #: when an address is at its limit, its sessions silent this long are
    #: closed to admit its new connections (a farm back from an uplink
    #: failure, whose old connections the gateway never saw die)
    stale_after: float = 120.0
    #: sustained requests per second per connection (token bucket) ...
    request_rate: float = 100.0
    #: ... and the burst a connection may send at once; above them it is
    #: throttled (not read until the bucket refills) ...
    request_burst: int = 1_000
    #: ... and closed once it has been throttled this long without a rest
    #: (the bucket full again once)
    throttle_time: float = 300.0
    #: seconds from connect to a successful ``mining.authorize``
    auth_timeout: float = 60.0
    #: reply bytes queued for a peer that stopped reading, beyond the
    #: transport's own buffer, before it is dropped
    max_send_buffer: int = 1 << 20
    #: seconds a connection we closed may take to go away before it is aborted
    close_timeout: float = 10.0
    #: abuse closes of one host before it is banned
    ban_strikes: int = 3
    #: the first ban; each further strike doubles it ...
    ban_time: float = 60.0
    #: ... up to this
    ban_time_max: float = 3600.0
    #: strikes are forgotten after this long without a new one
    ban_forget: float = 3600.0
    #: hosts remembered; the least recently offending is forgotten first
    max_offenders: int = 100_000

    def __attrs_post_init__(self):
        if self.ban_time_max < self.ban_time:
            raise ValueError("ban_time_max must be at least ban_time")

    @classmethod
    def from_reader(cls, reader):
        """
        The limits of a ``limits`` config section (a ``ConfigReader``, or
        ``None`` when the section is absent: every default).
        """
        if reader is None:
            return cls()
        d = cls()
        values = {
            "max_connections": reader.optional("max_connections", int, d.max_connections, positive),
            "max_connections_per_ip": reader.optional(
                "max_connections_per_ip", int, d.max_connections_per_ip, positive),
            "stale_after": reader.optional("stale_after", float, d.stale_after, positive),
            "request_rate": reader.optional("request_rate", float, d.request_rate, positive),
            "request_burst": reader.optional("request_burst", int, d.request_burst, positive),
            "throttle_time": reader.optional("throttle_time", float, d.throttle_time, positive),
            "auth_timeout": reader.optional("auth_timeout", float, d.auth_timeout, positive),
            "max_send_buffer": reader.optional("max_send_buffer", int, d.max_send_buffer, positive),
            "close_timeout": reader.optional("close_timeout", float, d.close_timeout, positive),
            "ban_strikes": reader.optional("ban_strikes", int, d.ban_strikes, positive),
            "ban_time": reader.optional("ban_time", float, d.ban_time, positive),
            "ban_time_max": reader.optional("ban_time_max", float, d.ban_time_max, positive),
            "ban_forget": reader.optional("ban_forget", float, d.ban_forget, positive),
            "max_offenders": reader.optional("max_offenders", int, d.max_offenders, positive),
        }
        try:
            return cls(**values)
        except ValueError as e:
            raise ConfigError(reader.path("ban_time_max"), str(e)) from None


@attrs.define
class _Record:
    strikes: int
    last: float
    banned_until: float


class Offenders:
    """
    Strikes and temporary bans by IP address, at most ``max_offenders`` hosts.

    ``offend(host, now)`` records an abuse close and returns the ban it
    earned in seconds (0: none yet).  Entries are kept in order of their last
    offence, so when the table is full the host that offended longest ago is
    forgotten.
    """

    def __init__(self, limits):
        self._limits = limits
        self._records = {}

    def __len__(self):
        return len(self._records)

    def banned(self, host, now):
        """True while ``host`` serves a ban."""
        record = self._records.get(host)
        return record is not None and now < record.banned_until

    def offend(self, host, now):
        limits = self._limits
        record = self._records.pop(host, None)
        if record is None or now - record.last > limits.ban_forget:
            record = _Record(0, now, 0.0)
        record.strikes += 1
        record.last = now
        ban = 0.0
        over = record.strikes - limits.ban_strikes
        if over >= 0:
            # 2 ** over overflows floats for absurd strike counts; the cap
            # is reached long before.
            ban = limits.ban_time_max if over >= 64 else min(limits.ban_time * 2.0**over, limits.ban_time_max)
            record.banned_until = now + ban
        while len(self._records) >= limits.max_offenders:
            del self._records[next(iter(self._records))]
        self._records[host] = record
        return ban

    def prune(self, now):
        """Forget hosts whose strikes have lapsed and whose ban is over."""
        forget = self._limits.ban_forget
        expired = [host for host, r in self._records.items() if now - r.last > forget and now >= r.banned_until]
        for host in expired:
            del self._records[host]
        return len(expired)
