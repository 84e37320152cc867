# -*- test-case-name: tests.rpc.test_jobmasters -*-
"""
Where the height hints go: every jobmaster, by UDP (ref §1.2, §6.4).
Poolbench and bitpeer both hint, so the list's parameters live here, below
the roles: the seed's ``jobmaster_url`` list (``viabtc.rpc.addresslist``)
plus our static ``jobmaster`` array, each entry a UDP address, kept in the
``DatagramSender`` the hints leave by.  An empty reply is a broken list
service, not "no jobmasters": the last list is kept.
"""

from viabtc.config import ConfigError, positive
from viabtc.rpc.addresslist import AddressList, http_url, is_ip


def static_jobmasters(reader, key="jobmaster"):
    """
    The config's static list at ``key`` (our addition beside the seed's
    ``jobmaster_url``): ``Address`` es of ``udp@ip:port`` (or plain
    ``ip:port``) entries; ``ConfigError`` names a bad one.
    """
    addresses = reader.addresses(key, required=False, default_transport="udp")
    for i, address in enumerate(addresses):
        where = f"{reader.path(key)}[{i}]"
        if address.transport != "udp" or not address.port:
            raise ConfigError(where, f"{address.text!r} is not a udp@ip:port address")
        if not is_ip(address.host):
            raise ConfigError(where, f"{address.text!r}: hints go to IP addresses only")
    return addresses


def hint_targets(reader):
    """
    The config fields saying where a hinting role's hints go, as keyword
    arguments of its config class: our static ``jobmaster`` list and the
    seed's ``jobmaster_url``, ``request_auth`` and
    ``jobmaster_update_interval``; ``ConfigError`` when neither list is given.
    """
    fields = dict(
        jobmasters=static_jobmasters(reader),
        jobmaster_url=reader.optional("jobmaster_url", str, None, http_url),
        request_auth=reader.optional("request_auth", str, None),
        jobmaster_update_interval=reader.optional("jobmaster_update_interval", float, 30.0, positive),
    )
    if fields["jobmaster_url"] is None and not fields["jobmasters"]:
        raise ConfigError("jobmaster", "give jobmaster (udp@ip:port addresses), "
                          "jobmaster_url, or both: hints need somewhere to go")
    return fields


def jobmaster_list(sender, reactor, *, static=(), url=None, auth=None, interval=30.0, role="rpc"):
    """
    An ``AddressList`` keeping ``sender`` (a ``DatagramSender``) addressed
    to every jobmaster: the ``static`` ones plus those from ``url``.
    """
    def address(addresses):
        sender.set_addresses([a.sockaddr for a in addresses])
    return AddressList(address, reactor, what="jobmasters", transport="udp", allow_empty=False,
                       static=static, url=url, auth=auth, interval=interval, role=role)
