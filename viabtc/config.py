# -*- test-case-name: tests.test_config -*-
"""
Reading and validating role configuration files.

Every role reads the seed's ``config.json`` for its module (ref §10), so the
seed's forms are accepted as they are: ``tcp@ip:port`` addresses, ``bind`` as a
string or an array, coin daemons inline or under ``addr``, the alertcenter's
Sentinel-style ``redis`` block.  Beside them we accept Twisted endpoint
descriptions (``tcp:3333:interface=0.0.0.0``, ``ssl:...``) and a few new keys.
A client ``ssl:`` address (a module link) must verify its server, or the
role does not start (see "TLS clients" below).

A bad or missing key stops start-up with ONE line naming the key
(``ConfigError``: ``svr.bind[1]: ...``), never a traceback.  Keys the role never
read are reported once each (``ConfigReader.warn_unused``), so a typo in a key
name does not silently fall back to a default.

Role configurations are attrs classes built in ``viabtc/<role>/config.py`` from
a ``ConfigReader`` with the common blocks defined here.
"""

import ipaddress
import json
import os
import re
import resource

import attrs
from OpenSSL import crypto
from twisted.internet.endpoints import (
    clientFromString,
    quoteStringArgument,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.logger import Logger

from viabtc.backlog import check_backlog, described_backlog, listen_backlog, with_backlog


class ConfigError(Exception):
    """
    A configuration key is missing or bad.

    ``key`` is the dotted path of the key (``svr.bind[1]``), or the file name
    for errors about the file itself; ``str(error)`` is the one line printed
    at start-up.
    """

    def __init__(self, key, message):
        super().__init__(key, message)
        self.key = key
        self.message = message

    def __str__(self):
        return f"{self.key}: {self.message}"


# JSON type names used in error messages, so operators see the words of the
# file they edit rather than Python's.
_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _json_name(value):
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def load_json(path):
    """
    Load a JSON configuration file whose top level must be an object.

    Every failure (missing or unreadable file, bad JSON with its line and
    column, a top level that is not an object) is a ``ConfigError`` whose key
    is the file name.  ``NaN``/``Infinity`` are rejected as the seed's JSON
    parser (jansson) rejects them.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, f"cannot read file: {e}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(
            path, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    except ValueError as e:
        raise ConfigError(path, f"invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, f"top level must be an object, not {_json_name(data)}")
    return data


# -- validators ----------------------------------------------------------------
#
# A validator takes a value already of the right kind and returns it (possibly
# converted) or raises ValueError with a message; ConfigReader adds the key.


def positive(value):
    """Greater than zero."""
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return value


def non_negative(value):
    """Zero or more."""
    if value < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return value


def port(value):
    """A TCP/UDP port number, 1 to 65535."""
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port number (1-65535), got {value!r}")
    return value


def one_of(*choices):
    """A validator accepting only the given values."""

    def check(value):
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ValueError(f"must be one of {listed}, got {value!r}")
        return value

    return check


def in_range(low, high):
    """A validator accepting ``low <= value <= high``."""

    def check(value):
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value!r}")
        return value

    return check


def non_empty(value):
    """A non-empty string or array."""
    if not value:
        raise ValueError("must not be empty")
    return value


def hex_bytes(length):
    """A validator turning a hex string of exactly ``length`` bytes into bytes."""

    def check(value):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"must be hex, got {value!r}") from None
        if len(raw) != length:
            raise ValueError(f"must be {length} bytes ({2 * length} hex digits), got {value!r}")
        return raw

    return check


_SENTINEL = object()
_INDEX = re.compile(r"\[\d+\]")


def _check_kind(value, kind):
    """
    True when ``value`` (from JSON) is of ``kind``.  ``bool`` is never an int
    (JSON ``true`` for a port is a mistake), an int is a float.
    """
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


class ConfigReader:
    """
    Typed access to one JSON object of a configuration, remembering which
    keys were read.

    ``prefix`` is this object's dotted path (``""`` for the file's top level),
    so every ``ConfigError`` names the full key.  Sections and array elements
    get their own readers, and ``unused()`` walks them, so a misspelt key
    anywhere in the file is found.
    """

    def __init__(self, data, prefix=""):
        if not isinstance(data, dict):
            raise ConfigError(prefix or "<config>", f"must be an object, not {_json_name(data)}")
        self._data = data
        self._prefix = prefix
        self._read = set()
        self._children = []

    @classmethod
    def from_file(cls, path):
        """A reader over the JSON object in ``path`` (see ``load_json``)."""
        return cls(load_json(path))

    def path(self, key):
        """The dotted path of ``key`` in this object."""
        return f"{self._prefix}.{key}" if self._prefix else key

    def __contains__(self, key):
        return key in self._data

    def is_object(self, key):
        """True when ``key`` holds a JSON object (for "string or object" keys)."""
        return isinstance(self._data.get(key), dict)

    def _get(self, key):
        self._read.add(key)
        value = self._data.get(key, _SENTINEL)
        return _SENTINEL if value is None else value

    def _validate(self, key, value, kind, validators):
        if not _check_kind(value, kind):
            raise ConfigError(key, f"expected {_JSON_NAMES[kind]}, got {_json_name(value)} ({json.dumps(value)[:40]})")
        if kind is float:
            value = float(value)
        for validator in validators:
            try:
                value = validator(value)
            except ValueError as e:
                raise ConfigError(key, str(e)) from None
        return value

    def required(self, key, kind, *validators):
        """The value of ``key``, which must be present (and not null)."""
        value = self._get(key)
        if value is _SENTINEL:
            raise ConfigError(self.path(key), "required key is missing")
        return self._validate(self.path(key), value, kind, validators)

    def optional(self, key, kind, default, *validators):
        """
        The value of ``key``, or ``default`` when absent or null.  The default
        is returned as given, not validated.
        """
        value = self._get(key)
        if value is _SENTINEL:
            return default
        return self._validate(self.path(key), value, kind, validators)

    def section(self, key, required=True):
        """
        A reader over the object at ``key``; ``None`` when it is absent and
        not ``required``.
        """
        value = self._get(key)
        if value is _SENTINEL:
            if required:
                raise ConfigError(self.path(key), "required section is missing")
            return None
        if not isinstance(value, dict):
            raise ConfigError(self.path(key), f"expected an object, got {_json_name(value)}")
        return self._child(value, self.path(key))

    def _child(self, data, prefix):
        child = ConfigReader(data, prefix)
        self._children.append(child)
        return child

    def _items(self, key, required, single):
        """The elements of the array at ``key`` (None when absent)."""
        value = self._get(key)
        if value is _SENTINEL:
            if required:
                raise ConfigError(self.path(key), "required key is missing")
            return None
        if isinstance(value, list):
            return [(f"{self.path(key)}[{i}]", item) for i, item in enumerate(value)]
        if single:
            return [(self.path(key), value)]
        raise ConfigError(self.path(key), f"expected an array, got {_json_name(value)}")

    def list(self, key, kind, *validators, required=True, default=(), single=False, min_length=0):
        """
        The array at ``key`` as a tuple, each element of ``kind`` and passed
        through ``validators`` (errors name ``key[i]``).

        ``single=True`` also accepts one bare element (the seed's "string or
        array" keys, like ``bind``).  Absent and not ``required``: ``default``.
        """
        items = self._items(key, required, single)
        if items is None:
            return default
        if len(items) < min_length:
            raise ConfigError(self.path(key), f"needs at least {min_length} element(s)")
        return tuple(self._validate(path, item, kind, validators) for path, item in items)

    def sections(self, key, required=True, single=False, min_length=0):
        """
        Readers over an array of objects (``aux_coin``, ``pool_list``);
        ``single=True`` also accepts one bare object.  Absent and not
        ``required``: an empty tuple.
        """
        items = self._items(key, required, single)
        if items is None:
            return ()
        if len(items) < min_length:
            raise ConfigError(self.path(key), f"needs at least {min_length} element(s)")
        readers = []
        for path, item in items:
            if not isinstance(item, dict):
                raise ConfigError(path, f"expected an object, got {_json_name(item)}")
            readers.append(self._child(item, path))
        return tuple(readers)

    def address(self, key, side=None, required=True, default=None, default_transport="tcp"):
        """
        The address at ``key`` (see ``parse_address``).  ``side`` ("server" or
        "client") also checks that the address can be used that way, so a
        client address with port 0, an SSL server without its key files or
        an SSL client that would not verify its server (no ``caCertsDir=`` /
        ``caCertFile=`` or no ``hostname=``, see ``ssl_client_problem``)
        fails here, naming the key, instead of at listen or connect time.
        """
        value = self.required(key, str) if required else self.optional(key, str, _SENTINEL)
        if value is _SENTINEL:
            return default
        return _checked_address(value, self.path(key), side, default_transport)

    def addresses(self, key, side=None, required=True, default_transport="tcp", allow_empty=False):
        """
        One address or an array of them at ``key`` (the seed's ``bind`` and
        ``addr``), at least one unless ``allow_empty`` (lists the seed reads
        as "none of these", like the jobmaster's ``blockmaster: []``); ``()``
        when absent and not ``required``.
        """
        items = self._items(key, required, single=True)
        if items is None:
            return ()
        if not items and not allow_empty:
            raise ConfigError(self.path(key), "needs at least one address")
        result = []
        for path, item in items:
            if not isinstance(item, str):
                raise ConfigError(path, f"expected a string, got {_json_name(item)}")
            result.append(_checked_address(item, path, side, default_transport))
        return tuple(result)

    def unused(self):
        """Dotted paths of keys present in the file but never read."""
        found = [self.path(k) for k in self._data if k not in self._read]
        for child in self._children:
            found.extend(child.unused())
        return found

    def warn_unused(self, log, ignored=frozenset()):
        """
        Log one warning per unused key and return them.

        ``ignored`` lists keys the seed accepts but this role deliberately
        ignores (``jobmonitor`` in jobmaster, ``log.shift``); they get a milder
        message than unknown keys (probably typos).  Entries match with array
        indices removed (``aux_coin.address``), and ``*.name`` matches
        ``name`` in any section (``*.read_mem``).
        """
        unused = self.unused()
        for key in unused:
            if key in COMMON_KEYS:
                continue
            if key == METRICS_FALLBACK:
                # Read by viabtc.tap (metrics_binds), not by the role's config class.
                if "metrics" in self._data:
                    log.warn("config: http_svr is not used: /metrics is served on the metrics key's address "
                             "and this role has no other HTTP interface", key=key)
                else:
                    log.info("config: http_svr serves /metrics only (this role has no other HTTP interface)",
                             key=key)
                continue
            bare = _INDEX.sub("", key)
            last = bare.rsplit(".", 1)[-1]
            if bare in ignored or f"*.{last}" in ignored:
                log.warn("config: {key} is a key the seed accepts but this role ignores", key=key)
            else:
                log.warn("config: unknown key {key} (not used; misspelt?)", key=key)
        return unused


# Keys of the common blocks that the seed reads but that have no effect here;
# roles pass this (plus their own) to ``warn_unused``.
SEED_IGNORED = frozenset({
    "*.read_mem",  # SO_RCVBUF/SO_SNDBUF: the kernel's autotuning is used
    "*.write_mem",
    "log.shift",  # mineragent's own log rotation; twistd's logging rotates
    "log.pid",
    "log.fork",
    "log.max",
    "log.num",
    "log.keep",
})

# Keys every role may have that viabtc.tap reads, not the role's config class:
# ``metrics`` (the /metrics listener, viabtc.metrics).
COMMON_KEYS = frozenset({"metrics"})
# The seed's ``http_svr`` of a role whose config class does not read it (jobmaster,
# bitpeer, blockmaster: the seed never served it): viabtc.tap serves /metrics there
# unless ``metrics`` is given.
METRICS_FALLBACK = "http_svr"


# -- addresses -----------------------------------------------------------------

_SEED_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "stream": "unix", "dgram": "unixgram"}
_TWISTED_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_+.-]*:")


@attrs.frozen
class Address:
    """
    A network address from a configuration.

    ``transport`` is "tcp", "udp", "ssl", "unix" (stream), "unixgram" (the
    seed's ``dgram@``) or "endpoint" (any other Twisted endpoint description,
    passed through).  ``host``/``port`` are set for tcp, udp and ssl, ``path``
    for unix sockets.  ``description`` is the Twisted description as written
    (None for the seed's forms), ``text`` the configured string.
    """

    transport: str
    host: str | None = None
    port: int | None = None
    path: str | None = None
    description: str | None = None
    text: str = ""
    # "server" or "client" when a Twisted description was written in one of
    # the two forms (``tcp:3333`` vs ``tcp:host=h:port=p``), else None.
    form: str | None = attrs.field(default=None, repr=False)
    #: the listen backlog of a stream server (``svr.backlog``); None: the
    #: kernel's ``net.core.somaxconn`` (``viabtc.backlog``)
    backlog: int | None = attrs.field(default=None, repr=False)

    @property
    def is_datagram(self):
        return self.transport in ("udp", "unixgram")

    @property
    def sockaddr(self):
        """``(host, port)`` for inet addresses, the path for unix ones."""
        if self.path is not None:
            return self.path
        return (self.host, self.port)

    def __str__(self):
        return self.text

    def server_description(self):
        """
        The Twisted server endpoint description (``tcp@0.0.0.0:3333`` →
        ``tcp:3333:interface=0.0.0.0``).  ValueError when this address cannot
        be listened on as a stream (datagram, or an SSL client description).
        """
        if self.is_datagram:
            raise ValueError("a datagram address cannot be a stream server")
        if self.form in ("server", None) and self.description is not None:
            return self.description
        if self.transport == "tcp":
            kind = "tcp6" if ":" in self.host else "tcp"
            return f"{kind}:{self.port}:interface={quoteStringArgument(self.host)}"
        if self.transport == "unix":
            # lockfile=1: a second instance fails instead of stealing the
            # socket (the seed unlinks unconditionally), and the socket of a
            # crashed instance (stale lock) is removed.  Mode 660 rather than
            # the seed's 0777 (§12.6).
            return f"unix:{quoteStringArgument(self.path)}:mode=660:lockfile=1"
        raise ValueError(f"{self.text!r} is a client description, not a server one")

    def client_description(self):
        """
        The Twisted client endpoint description (``tcp@10.0.0.1:6000`` →
        ``tcp:host=10.0.0.1:port=6000``).  ValueError when this address cannot
        be connected to as a stream.
        """
        if self.is_datagram:
            raise ValueError("a datagram address cannot be a stream client")
        if self.form in ("client", None) and self.description is not None:
            return self.description
        if self.transport == "tcp":
            if self.port == 0:
                raise ValueError("a client address needs a port other than 0")
            return f"tcp:host={quoteStringArgument(self.host)}:port={self.port}"
        if self.transport == "unix":
            return f"unix:path={quoteStringArgument(self.path)}"
        raise ValueError(f"{self.text!r} is a server description, not a client one")

    def server_endpoint(self, reactor):
        """
        An ``IStreamServerEndpoint`` listening on this address, with the
        listen backlog of ``viabtc.backlog`` (``backlog``, else the kernel's
        cap): every role's stream listener is built here.
        """
        return serverFromString(reactor, with_backlog(self.server_description(), listen_backlog(self.backlog)))

    def client_endpoint(self, reactor):
        """
        An ``IStreamClientEndpoint`` connecting to this address.  An ``ssl:``
        client must verify its server (``ssl_client_problem``), else
        ValueError: no code path builds a TLS link open to a man in the
        middle.
        """
        description = self.client_description()
        if self.transport == "ssl":
            return _ssl_client_endpoint(reactor, description)
        return clientFromString(reactor, description)

    def listen_udp(self, reactor, protocol, max_packet_size=65535):
        """
        Listen for datagrams on this ``udp@`` (or unix ``dgram@``) address
        with ``protocol``; returns the listening port.
        """
        if self.transport == "udp":
            return reactor.listenUDP(self.port, protocol, interface=self.host,
                                     maxPacketSize=max_packet_size)
        if self.transport == "unixgram":
            return reactor.listenUNIXDatagram(self.path, protocol, maxPacketSize=max_packet_size)
        raise ValueError(f"{self.text!r} is not a datagram address")


def _ip(text, key, what):
    """Validate an IP literal (the seed takes no host names)."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        raise ConfigError(
            key,
            f"{what} {text!r} is not an IP address (the seed's forms take no "
            "host names; use a Twisted endpoint such as tcp:host=NAME:port=N)",
        ) from None


def _port(text, key):
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError(key, f"bad port {text!r} (expected 0-65535)")
    return int(text)


def _split_host_port(text, key):
    """``ip:port``, ``[v6]:port``, ``v6:port`` (last colon) or ``ip port``."""
    parts = text.split()
    if len(parts) == 2:
        host, port_text = parts
    elif len(parts) == 1 and ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        raise ConfigError(key, f"{text!r} is not of the form ip:port")
    return _ip(host, key, "host"), _port(port_text, key)


def _split_description(text):
    """
    Split a Twisted endpoint description at unescaped colons, as
    ``serverFromString`` does: (type, positional args, keyword args).
    """
    tokens = [_UNESCAPE.sub(r"\1", token) for token in _raw_tokens(text)]
    args, kwargs = [], {}
    # "=" after an escape was already unescaped; good enough to find
    # host/port/interface, and the string itself is passed on unchanged.
    for token in tokens[1:]:
        name, eq, value = token.partition("=")
        if eq:
            kwargs[name] = value
        else:
            args.append(token)
    return tokens[0].lower(), args, kwargs


# -- TLS clients -------------------------------------------------------------------
#
# Twisted's ``ssl:`` client description verifies nothing unless it is given
# ``caCertsDir=`` (the chain) and ``hostname=`` (the name): without them a link
# is encrypted but open to a man in the middle.  Links carry jobs, found
# blocks and statistics, so a client ``ssl:`` address must have both.  One CA
# file (``caCertFile=``, our addition) may stand for the directory.

_CA_DIR, _CA_FILE, _HOSTNAME = "caCertsDir", "caCertFile", "hostname"
_CLIENT_CERT = ("certKey", "privateKey")


def ssl_client_problem(description):
    """
    Why the client ``ssl:`` ``description`` would not verify its server,
    as a phrase saying what to add; None when it does.
    """
    _, _, kwargs = _split_description(description)
    ca_dir, ca_file = kwargs.get(_CA_DIR), kwargs.get(_CA_FILE)
    missing = []
    if not kwargs.get(_HOSTNAME):
        missing.append("hostname=<a name in the server's certificate>")
    if not ca_dir and not ca_file:
        missing.append("caCertsDir=<directory of CA .pem files> or caCertFile=<CA .pem file>")
    if missing:
        return ("does not verify the server: add " + " and ".join(missing)
                + " (until then the link is open to a man in the middle)")
    if ca_dir is not None and ca_file is not None:
        return "names both caCertsDir= and caCertFile=: keep one"
    if ca_file is not None and any(name in kwargs for name in _CLIENT_CERT):
        return "has a client certificate (certKey=/privateKey=): that needs caCertsDir=, not caCertFile="
    return None


def _pem_certificates(data):
    """Every certificate in PEM ``data`` (a CA bundle may hold several)."""
    marker = b"-----BEGIN CERTIFICATE-----"
    return [Certificate.loadPEM(marker + part) for part in data.split(marker)[1:]]


def _ca_file_trust(path):
    with open(path, "rb") as f:
        certificates = _pem_certificates(f.read())
    if not certificates:
        raise ValueError(f"caCertFile {path!r} holds no PEM certificate")
    return trustRootFromCertificates(certificates)


def _check_ca_dir(path):
    """Twisted trusts nothing, silently, when the directory holds no usable .pem file."""
    for name in sorted(os.listdir(path)):
        if name.lower().endswith(".pem"):
            try:
                with open(os.path.join(path, name), "rb") as f:
                    if _pem_certificates(f.read()):
                        return
            except (OSError, crypto.Error):
                continue
    raise ValueError(f"caCertsDir {path!r} holds no readable CA certificate (*.pem)")


#: a backslash escape in an endpoint description (a trailing one stands for nothing)
_UNESCAPE = re.compile(r"\\(.?)", re.S)


def _raw_tokens(text):
    """``text`` split at unescaped colons, escapes kept (to rebuild a description)."""
    tokens, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ":":
            tokens.append("".join(current))
            current = []
        else:
            current.append(ch)
    tokens.append("".join(current))
    return tokens


def _ssl_client_endpoint(reactor, description):
    """The endpoint of a verifying client ``ssl:`` description (see ``ssl_client_problem``)."""
    problem = ssl_client_problem(description)
    if problem is not None:
        raise ValueError(f"{description!r} {problem}")
    _, _, kwargs = _split_description(description)
    if _CA_FILE not in kwargs:
        _check_ca_dir(kwargs[_CA_DIR])
        return clientFromString(reactor, description)
    # Twisted's ssl: parser knows no CA file: the same TCP connection
    # (host, port, timeout, bindAddress), wrapped in TLS that checks the
    # chain against the file and the name against hostname=.
    options = optionsForClientTLS(kwargs[_HOSTNAME], trustRoot=_ca_file_trust(kwargs[_CA_FILE]))
    tcp = ":".join(["tcp"] + [
        token for token in _raw_tokens(description)[1:]
        if token.partition("=")[0] not in (_CA_FILE, _HOSTNAME)
    ])
    return wrapClientTLS(options, clientFromString(reactor, tcp))


def _parse_twisted(text, key):
    kind, args, kwargs = _split_description(text)
    if kind in ("tcp", "tcp6", "ssl", "udp"):
        transport = "tcp" if kind == "tcp6" else kind
        if "host" in kwargs:
            if "port" not in kwargs:
                raise ConfigError(key, f"{text!r} has host= but no port=")
            host, form = kwargs["host"], "client"
            if not host:
                raise ConfigError(key, f"{text!r} has an empty host")
        else:
            if args:
                port_text = args[0]
            elif "port" in kwargs:
                port_text = kwargs["port"]
            else:
                raise ConfigError(key, f"{text!r} names no port")
            kwargs["port"] = port_text
            host = kwargs.get("interface") or ("::" if kind == "tcp6" else "0.0.0.0")
            host, form = _ip(host, key, "interface"), "server"
        if transport == "ssl" and form == "server" and "privateKey" not in kwargs:
            raise ConfigError(key, f"{text!r}: an ssl server needs privateKey=")
        return Address(transport, host=host, port=_port(kwargs["port"], key),
                       description=None if transport == "udp" else text,
                       text=text, form=form)
    if kind == "unix":
        path = kwargs.get("path") or kwargs.get("address") or (args[0] if args else "")
        if not path:
            raise ConfigError(key, f"{text!r} names no socket path")
        form = "client" if "path" in kwargs else "server" if "address" in kwargs else None
        return Address("unix", path=path, description=text, text=text, form=form)
    return Address("endpoint", description=text, text=text)


def parse_address(text, key="address", default_transport="tcp"):
    """
    Parse a configured address; errors are ``ConfigError(key, ...)``.

    Accepted forms:

    - the seed's ``tcp@ip:port``, ``udp@ip:port``, ``stream@/path`` (unix
      stream), ``dgram@/path`` (unix datagram); IPv6 as ``tcp@[::1]:3333``
      or, as the seed splits at the last colon, ``tcp@::1:3333``;
    - the seed's plain ``ip:port`` or ``ip port`` (alert and jobmaster lists),
      taken as ``default_transport`` ("tcp" or "udp");
    - Twisted endpoint descriptions: ``tcp:3333:interface=0.0.0.0``,
      ``ssl:3334:privateKey=k.pem:certKey=c.pem``, ``unix:/path``,
      ``tcp:host=h:port=p`` (clients; host names allowed here),
      ``ssl:host=h:port=p:caCertsDir=d:hostname=n`` (or ``caCertFile=f``
      instead of ``caCertsDir``; a client must verify, checked with
      ``side="client"`` and when its endpoint is built), and
      ``udp:3000:interface=...`` / ``udp:host=h:port=p`` for datagrams.  Other
      endpoint types (``systemd:...``, ``tls:...``) pass through unparsed.
    """
    if not isinstance(text, str):
        raise ConfigError(key, f"expected an address string, got {_json_name(text)}")
    text = text.strip()
    if not text:
        raise ConfigError(key, "empty address")
    proto, at, rest = text.partition("@")
    if at and proto.lower() in _SEED_PROTOCOLS:
        transport = _SEED_PROTOCOLS[proto.lower()]
        if transport.startswith("unix"):
            if not rest:
                raise ConfigError(key, f"{text!r} names no socket path")
            return Address(transport, path=rest, text=text)
        host, port_number = _split_host_port(rest, key)
        return Address(transport, host=host, port=port_number, text=text)
    if at and proto.lower() == "seqpacket":
        raise ConfigError(key, "seqpacket sockets are not supported; use stream@ or tcp@")
    if at:
        raise ConfigError(key, f"unknown protocol {proto!r} (expected tcp@, udp@, stream@ or dgram@)")
    if text[0].isdigit() or text[0] == "[":
        if default_transport not in ("tcp", "udp"):
            raise ValueError(f"default_transport must be tcp or udp, not {default_transport!r}")
        host, port_number = _split_host_port(text, key)
        return Address(default_transport, host=host, port=port_number, text=text)
    if _TWISTED_TYPE.match(text):
        return _parse_twisted(text, key)
    raise ConfigError(key, f"{text!r} is not an address (e.g. tcp@0.0.0.0:3333 or tcp:3333)")


def _checked_address(text, key, side, default_transport):
    address = parse_address(text, key, default_transport)
    if side is None or address.is_datagram:
        return address
    try:
        if side == "server":
            description = address.server_description()
            backlog = described_backlog(description)
            if backlog is not None:
                check_backlog(backlog, key)
            if address.transport in ("ssl", "endpoint"):
                # Builds the endpoint without listening: an SSL server loads
                # its key and certificate here, an unknown type is refused.
                serverFromString(None, description)
        elif side == "client":
            description = address.client_description()
            if address.transport == "ssl":
                problem = ssl_client_problem(description)
                if problem is not None:
                    raise ConfigError(key, f"{text!r} {problem}")
                # Builds the endpoint without connecting: the CA files are read here.
                address.client_endpoint(None)
            elif address.transport == "endpoint":
                clientFromString(None, description)
        else:
            raise ValueError(f"side must be 'server' or 'client', not {side!r}")
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(key, f"cannot use {text!r} as a {side} address: {e}") from None
    return address


# -- common blocks (ref §10) -----------------------------------------------------


@attrs.frozen
class ServerBlock:
    """
    A listening block (``svr``, ``monitor``, ``http_svr``): one or more bind
    addresses (stream and datagram mixed, as the seed's jobmaster listens on
    TCP and UDP 6000), the maximum frame size and the send-buffer limit.

    ``backlog`` (our key) is the listen backlog of its stream binds, given
    to each of them (``Address.backlog``); absent, they listen with the
    kernel's ``net.core.somaxconn`` as the seed does (``viabtc.backlog``).
    """

    binds: tuple[Address, ...]
    max_pkg_size: int
    buf_limit: int | None = None
    backlog: int | None = None

    @classmethod
    def from_reader(cls, reader):
        binds = reader.addresses("bind", side="server")
        backlog = reader.optional("backlog", int, None, positive)
        if backlog is not None:
            check_backlog(backlog, reader.path("backlog"))
            binds = tuple(a if a.is_datagram else attrs.evolve(a, backlog=backlog) for a in binds)
        return cls(
            binds=binds,
            max_pkg_size=reader.required("max_pkg_size", int, positive),
            buf_limit=reader.optional("buf_limit", int, None, positive),
            backlog=backlog,
        )

    @property
    def stream_binds(self):
        return tuple(a for a in self.binds if not a.is_datagram)

    @property
    def datagram_binds(self):
        return tuple(a for a in self.binds if a.is_datagram)


@attrs.frozen
class HTTPBlock:
    """
    ``http_svr`` (the seed's form): the listeners of a role's HTTP interface
    and its keep-alive seconds; the gateway's (ref §4.11) and the dashboard's.
    """

    server: ServerBlock
    keep_alive: float = 3600.0

    @classmethod
    def from_reader(cls, reader):
        return cls(
            server=ServerBlock.from_reader(reader),
            keep_alive=reader.optional("keep_alive", float, 3600.0, positive),
        )


def _clamped(low, high):
    """The seed clamps heartbeat timeouts into [2, 600] s; so do we."""

    def clamp(value):
        return min(max(value, low), high)

    return clamp


@attrs.frozen
class RPCClientBlock:
    """
    A module-to-module RPC client (``job``, ``writer``, ``brother``): the
    peer's name for logs, the failover address list (ref §2.3), the maximum
    frame size and the reconnect/heartbeat timing in seconds.
    """

    name: str
    addrs: tuple[Address, ...]
    max_pkg_size: int
    reconnect_timeout: float = 1.0
    heartbeat_timeout: float = 3.0

    @classmethod
    def from_reader(cls, reader):
        return cls(
            name=reader.required("name", str, non_empty),
            addrs=reader.addresses("addr", side="client"),
            max_pkg_size=reader.required("max_pkg_size", int, positive),
            reconnect_timeout=reader.optional("reconnect_timeout", float, 1.0, positive),
            heartbeat_timeout=reader.optional("heartbeat_timeout", float, 3.0, _clamped(2.0, 600.0)),
        )


def link_block(reader, key, required=True):
    """
    An ``RPCClientBlock`` under ``key`` for a link that may also be UDP
    (``writer``, ``brother``): failover stream addresses, or exactly one
    ``udp@`` address; None when absent and not ``required``.
    """
    section = reader.section(key, required=required)
    if section is None:
        return None
    block = RPCClientBlock.from_reader(section)
    datagram = [a for a in block.addrs if a.is_datagram]
    if datagram and (len(block.addrs) != 1 or datagram[0].transport != "udp"):
        raise ConfigError(section.path("addr"), "a UDP link takes exactly one udp@ address")
    return block


def optional_block(reader, key, block):
    """``block.from_reader`` of the section ``key``, or None when the file has none."""
    section = reader.section(key, required=False)
    return None if section is None else block.from_reader(section)


@attrs.frozen
class NodeEntry:
    """
    One bitcoind-compatible JSON-RPC daemon.  ``cookie_file`` (bitcoind's
    ``.cookie``) replaces user/password; ``url`` overrides the default
    ``http://host:port/`` (e.g. a wallet path).
    """

    host: str
    port: int
    user: str | None
    password: str | None = attrs.field(repr=False)
    cookie_file: str | None = None
    url: str | None = None

    @classmethod
    def from_reader(cls, reader):
        cookie_file = reader.optional("cookie_file", str, None, non_empty)
        if cookie_file is None:
            user = reader.required("user", str)
            password = reader.required("pass", str)
        else:
            user = reader.optional("user", str, None)
            password = reader.optional("pass", str, None)
        url = reader.optional("url", str, None)
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(reader.path("url"), f"must be an http:// or https:// URL, got {url!r}")
        return cls(
            host=reader.required("host", str, non_empty),
            port=reader.required("port", int, port),
            user=user,
            password=password,
            cookie_file=cookie_file,
            url=url,
        )


@attrs.frozen
class CoinRPCBlock:
    """
    A coin daemon block (``main_coin``, ``coin``, each ``aux_coin``): a name
    and the daemons tried in order (ref §3.1), given inline
    (``host/port/user/pass``) or under ``addr`` as an object or an array.
    Keys a role adds to the block (``address`` in ``aux_coin``) are read by
    the role from the same reader.
    """

    name: str
    nodes: tuple[NodeEntry, ...]

    @classmethod
    def from_reader(cls, reader, default_name=None):
        """``default_name``: where a role's block may omit ``name`` (the dashboard's ``node``)."""
        if default_name is None:
            name = reader.required("name", str, non_empty)
        else:
            name = reader.optional("name", str, default_name, non_empty)
        if "addr" in reader:
            if "host" in reader:
                raise ConfigError(reader.path("addr"), "give either addr or inline host/port, not both")
            nodes = tuple(NodeEntry.from_reader(r) for r in reader.sections("addr", single=True, min_length=1))
        else:
            nodes = (NodeEntry.from_reader(reader),)
        return cls(name=name, nodes=nodes)


@attrs.frozen
class AlertBlock:
    """
    ``alert``: the identity string put in alerts (and used by the seed as the
    statistics host id) and the alertcenter's UDP address, if any.
    """

    host: str
    addr: Address | None = None

    @classmethod
    def from_reader(cls, reader):
        host = reader.required("host", str, non_empty)
        addr = reader.address("addr", required=False, default_transport="udp")
        if addr is not None and addr.transport != "udp":
            raise ConfigError(reader.path("addr"), f"alerts are sent over UDP; {addr.text!r} is not a UDP address")
        return cls(host=host, addr=addr)


DEFAULT_LOG_FLAGS = frozenset({"fatal", "error", "warn", "info"})
LOG_FLAGS = frozenset({"fatal", "error", "warn", "info", "notice", "debug", "trace", "user1", "user2"})


def _log_flags(value):
    flags = frozenset(f.strip() for f in value.split(",") if f.strip())
    unknown = sorted(flags - LOG_FLAGS)
    if unknown:
        raise ValueError(f"unknown log flag(s) {', '.join(unknown)} (known: {', '.join(sorted(LOG_FLAGS))})")
    return flags


@attrs.frozen
class LogBlock:
    """``log``: the log file base path and the enabled levels (``log.flag``)."""

    path: str | None = None
    flags: frozenset = DEFAULT_LOG_FLAGS

    @classmethod
    def from_reader(cls, reader):
        return cls(
            path=reader.optional("path", str, None, non_empty),
            flags=reader.optional("flag", str, DEFAULT_LOG_FLAGS, _log_flags),
        )


@attrs.frozen
class ProcessBlock:
    """``process``: file-descriptor and core-size limits (0 = untouched)."""

    file_limit: int = 0
    core_limit: int = 0

    _log = Logger()

    @classmethod
    def from_reader(cls, reader):
        return cls(
            file_limit=reader.optional("file_limit", int, 0, non_negative),
            core_limit=reader.optional("core_limit", int, 0, non_negative),
        )

    def apply(self):
        """
        Raise the limits as far as allowed (an unprivileged process stops at
        the hard limit) and log what it got; returns ``{name: soft limit}``.
        The seed fails when setrlimit fails; we start with what we have,
        since a too-low limit is better reported than a pool that is down.
        """
        result = {}
        for name, which, wanted in (("file_limit", resource.RLIMIT_NOFILE, self.file_limit),
                                    ("core_limit", resource.RLIMIT_CORE, self.core_limit)):
            if not wanted:
                continue
            soft, hard = resource.getrlimit(which)
            unlimited = hard == resource.RLIM_INFINITY
            try:
                # Raising the hard limit needs privilege; try it first.
                resource.setrlimit(which, (wanted, hard if unlimited or hard >= wanted else wanted))
            except (ValueError, OSError):
                try:
                    resource.setrlimit(which, (min(wanted, hard), hard))
                except (ValueError, OSError) as e:
                    self._log.warn("process: cannot set {name}: {error}", name=name, error=str(e))
            got = resource.getrlimit(which)[0]
            result[name] = got
            if got < wanted and got != resource.RLIM_INFINITY:
                self._log.warn("process: {name} is {got}, below the configured {wanted}",
                               name=name, got=got, wanted=wanted)
            else:
                self._log.info("process: {name} is {got}", name=name, got=got)
        return result


@attrs.frozen
class RedisBlock:
    """
    ``redis``: one Redis server.  Keys ``host`` (127.0.0.1), ``port`` (6379),
    ``auth`` (the seed's name; ``password`` is accepted too) and ``db`` (0).

    Or the master a Redis Sentinel elects: the seed's alertcenter sample
    gives a Sentinel-style block that its code never read (ref §9, §12.23),
    ``name`` (the master's name in Sentinel) and ``addr`` (the Sentinels'
    ``ip:port``); we speak it (``viabtc.redis``).  ``min_replicas`` (our
    key; default 1 with Sentinel, else 0) is how many replicas must hold a
    write before a role counts it done (Redis ``WAIT``), so that a failover
    to a replica loses nothing the role already let go of.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = attrs.field(default=None, repr=False)
    db: int = 0
    #: ``((ip, port), ...)`` of the Sentinels; empty: ``host``/``port`` is the server
    sentinels: tuple = ()
    master_name: str | None = None
    min_replicas: int = 0

    @property
    def text(self):
        """Where this block points, for log lines."""
        if self.sentinels:
            where = ", ".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"master {self.master_name!r} of Sentinels {where}"
        return f"{self.host}:{self.port}"

    @classmethod
    def from_reader(cls, reader):
        password = reader.optional("auth", str, None)
        password = reader.optional("password", str, password)
        db = reader.optional("db", int, 0, non_negative)
        if "addr" in reader:
            if "host" in reader:
                raise ConfigError(reader.path("addr"), "give either addr (Sentinel-style) or host/port, not both")
            name = reader.required("name", str, non_empty)
            sentinels = []
            for i, address in enumerate(reader.addresses("addr")):
                if address.transport != "tcp":
                    raise ConfigError(f"{reader.path('addr')}[{i}]", f"{address.text!r} is not an ip:port address")
                sentinels.append((address.host, address.port))
            return cls(password=password, db=db, sentinels=tuple(sentinels), master_name=name,
                       min_replicas=reader.optional("min_replicas", int, 1, non_negative))
        return cls(
            host=reader.optional("host", str, "127.0.0.1", non_empty),
            port=reader.optional("port", int, 6379, port),
            password=password,
            db=db,
            min_replicas=reader.optional("min_replicas", int, 0, non_negative),
        )


@attrs.frozen
class SecretBlock:
    """
    The shared HMAC secret authenticating module links (our addition to the
    packet format, ref §12.1): a string, or ``{"file": path}`` whose content
    (without trailing newlines) is the secret, so it can stay out of the
    config file.  At least 16 bytes: a short secret is guessable.
    """

    MIN_LENGTH = 16

    value: bytes = attrs.field(repr=False)

    @classmethod
    def from_reader(cls, reader, key="secret", required=False):
        """The secret at ``key``, or None when absent and not ``required``."""
        if key not in reader:
            if required:
                raise ConfigError(reader.path(key), "required key is missing")
            return None
        if reader.is_object(key):
            section = reader.section(key)
            where = section.path("file")
            path = section.required("file", str, non_empty)
            try:
                with open(path, "rb") as f:
                    value = f.read().rstrip(b"\r\n")
            except OSError as e:
                raise ConfigError(where, f"cannot read secret file: {e}") from None
        else:
            where = reader.path(key)
            value = reader.required(key, str).encode("utf-8")
        if len(value) < cls.MIN_LENGTH:
            raise ConfigError(where, f"secret too short ({len(value)} bytes; at least {cls.MIN_LENGTH})")
        return cls(value)


def cli_address(reader, key="cli"):
    """The admin CLI's listening address (``cli``), or None when absent."""
    return reader.address(key, side="server", required=False)


def read_config_file(path, build, ignored=SEED_IGNORED, log=None):
    """
    Load ``path``, build a role config with ``build(reader)`` and warn once
    about each key ``build`` never read; the pattern of every role's
    ``Config.from_file``.  ``ConfigError`` propagates for ``RoleOptions``.
    """
    reader = ConfigReader.from_file(path)
    config = build(reader)
    reader.warn_unused(log or _config_log, ignored)
    return config


def read_config_beside(path, from_reader, ignored=SEED_IGNORED, log=None):
    """
    ``read_config_file`` for configs naming files: ``from_reader(reader,
    base_dir)`` gets the config file's directory, where the seed's
    deployments keep those files, so relative paths are taken from there.
    """
    base_dir = os.path.dirname(os.path.abspath(path))
    return read_config_file(path, lambda reader: from_reader(reader, base_dir), ignored, log)


_config_log = Logger(namespace="viabtc.config")
