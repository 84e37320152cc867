# -*- test-case-name: tests.jobmaster.test_config -*-
"""
The jobmaster's configuration: the seed's ``jobmaster.json`` (ref §10) plus
our keys.

The seed's sample must load unchanged, so the keys the seed itself never
used are accepted and reported as ignored; the merged-mining keys
(``aux_coin``, ``aux_merkle_*``, ``aux_job_timeout``, ``rsk_coin``,
``rsk_job_interval``, ``vcash_coin``) are read and mined.  What the
seed got wrong is checked here, at start-up, with one line naming the key:
payout addresses are verified (checksum, network, any kind) and the pool's
tag texts must fit in the 100-byte coinbase scriptSig at any height.

Our keys: ``network`` (optional: a pin that the node's chain must match),
``found_blocks_dir`` (where every found block's hex is written before it is
submitted), ``secret`` (HMAC of module packets), ``hint_trust`` (sources
allowed to send height hints), ``gateway_trust`` (sources allowed to
connect as gateways) and ``bans`` (IP addresses banned for good at every
gateway, beside the CLI's ``addban``; reloaded on SIGHUP).

The seed's configs name no network.  Without ``network`` the chain is the
node's (``getblockchaininfo`` at start-up): the payout addresses are only
checked for being addresses here (``PayoutAddresses``) and are turned into
scripts for the node's chain when it has answered; with ``network`` they
are checked now and the node must be on that chain.  Either way an address
of another chain stops the role with one line naming its key.
"""

import ipaddress
import os

import attrs
from twisted.logger import Logger

from viabtc.bitcoin.address import InvalidAddress, address_to_script
from viabtc.bitcoin.coinbase import PERCENT_EPSILON, Recipient
from viabtc.bitcoin.network import NETWORKS, get_network
from viabtc.config import (
    SEED_IGNORED,
    AlertBlock,
    CoinRPCBlock,
    ConfigError,
    LogBlock,
    ProcessBlock,
    SecretBlock,
    ServerBlock,
    cli_address,
    in_range,
    non_negative,
    positive,
    read_config_beside,
)
from viabtc.bitcoin.auxpow import COMMITMENT_SIZE, SlotCollision, check_tree_size
from viabtc.jobmaster.auxchains import AuxCoinConfig
from viabtc.jobmaster.jobs import JobSettings, Payout, check_coinbase_text
from viabtc.jobmaster.merge import check_chain_ids

#: Keys of the seed's jobmaster config that we accept and ignore: keys the
#: seed itself never read (§12.23).
IGNORED_KEYS = SEED_IGNORED | frozenset({
    "jobmonitor", "ip_banned_time", "brother",
})

_log = Logger(namespace="viabtc.jobmaster.config")


def _ban_list(reader):
    """``bans``: IP addresses in one spelling each (IPv4-mapped IPv6 as IPv4)."""
    out = []
    for index, value in enumerate(reader.list("bans", str, required=False, default=())):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ConfigError(f"{reader.path('bans')}[{index}]", f"{value[:64]!r} is not an IP address") from None
        mapped = getattr(address, "ipv4_mapped", None)
        out.append(str(mapped or address))
    return tuple(dict.fromkeys(out))


def _trust_list(reader, key):
    """An optional array of IPs/CIDR networks; None when absent (no check)."""
    entries = reader.list(key, str, required=False, default=None)
    if entries is None:
        return None
    for i, entry in enumerate(entries):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"{reader.path(key)}[{i}]", f"{entry!r} is not an IP address or network") from None
    return entries


def _script(address, key, network):
    try:
        return address_to_script(address, network)
    except InvalidAddress as e:
        raise ConfigError(key, str(e)) from None


def _check_address(address, key):
    """``ConfigError`` unless ``address`` is an address of some known chain."""
    for network in NETWORKS:
        try:
            address_to_script(address, network)
            return
        except InvalidAddress:
            continue
    _script(address, key, NETWORKS[0])


@attrs.frozen
class PayoutAddresses:
    """
    The payout keys as written: ``main`` is ``(key, address)``,
    ``recipients`` ``(key, address, percent)`` each, for ``resolve`` once
    the chain is known.
    """

    main: tuple
    recipients: tuple = ()

    @classmethod
    def from_reader(cls, reader):
        main = reader.required("main_coin_recipient", str)
        recipients = []
        total = 0.0
        for section in reader.sections("coin_recipients", required=False):
            address = section.required("address", str)
            percent = section.required("percent", float, in_range(0.0, 1.0))
            total += percent
            recipients.append((section.path("address"), address, percent))
        if total > 1 + PERCENT_EPSILON:
            raise ConfigError("coin_recipients", f"percentages sum to {total:g}, more than 1")
        return cls((reader.path("main_coin_recipient"), main), tuple(recipients))

    def check(self):
        """``ConfigError`` naming the first key that holds no address of any chain."""
        _check_address(self.main[1], self.main[0])
        for key, address, _ in self.recipients:
            _check_address(address, key)

    def resolve(self, network):
        """The ``Payout`` on ``network``; ``ConfigError`` names an address of another chain."""
        main_key, main = self.main
        return Payout(_script(main, main_key, network), tuple(
            Recipient(_script(address, key, network), percent)
            for key, address, percent in self.recipients))


@attrs.frozen
class MergedMiningConfig:
    """
    ``aux_coin`` (an array, or one object), ``aux_merkle_size`` (a power of
    two), ``aux_merkle_nonce`` and ``aux_job_timeout`` (seconds); ``rsk_coin``
    and ``rsk_job_interval`` (seconds, 30); ``vcash_coin``.  The seed
    requires the ``aux_*`` numbers; here they are required only when some
    chain is mined (``aux_merkle_*`` only with ``aux_coin``).  Our key
    ``chain_id`` in an ``aux_coin`` entry lets slot collisions be refused at
    start-up (otherwise they are found once the daemons answer).
    """

    coins: tuple
    size: int
    nonce: int
    job_timeout: float
    rsk: CoinRPCBlock | None = None
    rsk_job_interval: float = 30.0
    vcash: CoinRPCBlock | None = None

    @classmethod
    def from_reader(cls, reader):
        coins = cls._coins(reader)
        rsk_section = reader.section("rsk_coin", required=False)
        rsk = CoinRPCBlock.from_reader(rsk_section) if rsk_section is not None else None
        rsk_interval = reader.optional("rsk_job_interval", float, 30.0, positive)
        vcash_section = reader.section("vcash_coin", required=False)
        vcash = CoinRPCBlock.from_reader(vcash_section) if vcash_section is not None else None
        if not coins and rsk is None and vcash is None:
            for key in ("aux_merkle_size", "aux_merkle_nonce", "aux_job_timeout"):
                reader.optional(key, object, None)
            return None
        names = [c.name for c in coins] + [b.name for b in (rsk, vcash) if b is not None]
        if len(set(names)) != len(names):
            raise ConfigError("aux_coin", f"aux chain names must differ: {names}")
        timeout = reader.required("aux_job_timeout", float, positive)
        if not coins:
            for key in ("aux_merkle_size", "aux_merkle_nonce"):
                reader.optional(key, object, None)
            return cls((), 1, 0, timeout, rsk, rsk_interval, vcash)
        try:
            size = check_tree_size(reader.required("aux_merkle_size", int))
        except ValueError as e:
            raise ConfigError("aux_merkle_size", str(e)) from None
        if size < len(coins):
            raise ConfigError("aux_merkle_size", f"{size} slots cannot hold {len(coins)} aux chains")
        nonce = reader.required("aux_merkle_nonce", int, in_range(0, 2**32 - 1))
        known = [c.chain_id for c in coins if c.chain_id is not None]
        try:
            check_chain_ids(known, size, nonce)
        except SlotCollision as e:
            raise ConfigError("aux_merkle_nonce", str(e)) from None
        return cls(tuple(coins), size, nonce, timeout, rsk, rsk_interval, vcash)

    @staticmethod
    def _coins(reader):
        coins = []
        for section in reader.sections("aux_coin", required=False, single=True):
            block = CoinRPCBlock.from_reader(section)
            coins.append(AuxCoinConfig(
                name=block.name, nodes=block.nodes,
                address=section.optional("address", str, None) or None,
                chain_id=section.optional("chain_id", int, None, in_range(0, 2**31 - 1)),
            ))
        return coins


@attrs.frozen
class JobmasterConfig:
    """The jobmaster's settings, validated."""

    svr: ServerBlock
    main_coin: CoinRPCBlock
    #: ``network`` and ``payout`` are None until the node names its chain,
    #: unless the config pins ``network``
    settings: JobSettings
    found_blocks_dir: str
    payout_addresses: PayoutAddresses | None = None
    cli: object = None
    blockmasters: tuple = ()
    blockmaster_timeout: float = 60.0
    job_rebroadcast_timeout: float = 50.0
    spv_mining_timeout: float = 60.0
    secret: SecretBlock | None = None
    merged: MergedMiningConfig | None = None
    hint_trust: tuple | None = None
    gateway_trust: tuple | None = None
    bans: tuple = ()
    alert: AlertBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @property
    def network(self):
        """The pinned network, or None: the node's chain decides."""
        return self.settings.network

    @classmethod
    def from_reader(cls, reader, config_dir="."):
        network = reader.optional("network", str, None)
        if network is not None:
            try:
                network = get_network(network)
            except ValueError as e:
                raise ConfigError("network", str(e)) from None
        addresses = PayoutAddresses.from_reader(reader)
        addresses.check()
        payout = addresses.resolve(network) if network is not None else None
        main_coin = CoinRPCBlock.from_reader(reader.section("main_coin"))
        merged = MergedMiningConfig.from_reader(reader)
        aux_room = COMMITMENT_SIZE if merged is not None and merged.coins else 0
        pool_name = reader.optional("pool_name", str, "")
        message = reader.optional("coinbase_message", str, "")
        try:
            check_coinbase_text(pool_name, "", aux_room)
        except ValueError as e:
            raise ConfigError("pool_name", str(e)) from None
        try:
            check_coinbase_text(pool_name, message, aux_room)
        except ValueError as e:
            raise ConfigError("coinbase_message", str(e)) from None
        settings = JobSettings(
            payout=payout,
            network=network,
            pool_name=pool_name,
            coinbase_message=message,
            coinbase_account=reader.optional("coinbase_account", bool, True),
            main_name=main_coin.name,
            block_version=reader.optional("main_block_version", int, 0, in_range(0, 0xFFFFFFFF)),
            segwit_commitment=reader.optional("segwit_commitment", bool, True),
        )
        svr = ServerBlock.from_reader(reader.section("svr"))
        if not svr.stream_binds:
            raise ConfigError("svr.bind", "needs at least one TCP address for gateways")
        found_dir = reader.optional("found_blocks_dir", str, "found_blocks")
        alert = reader.section("alert", required=False)
        log = reader.section("log", required=False)
        process = reader.section("process", required=False)
        return cls(
            svr=svr,
            main_coin=main_coin,
            settings=settings,
            payout_addresses=addresses,
            found_blocks_dir=os.path.join(config_dir, found_dir),
            cli=cli_address(reader),
            blockmasters=reader.addresses("blockmaster", side="client", required=False,
                                          allow_empty=True),
            blockmaster_timeout=reader.optional("blockmaster_timeout", float, 60.0, positive),
            job_rebroadcast_timeout=reader.optional("job_rebroadcast_timeout", float, 50.0, positive),
            spv_mining_timeout=reader.optional("spv_mining_timeout", float, 60.0, non_negative),
            secret=SecretBlock.from_reader(reader),
            merged=merged,
            hint_trust=_trust_list(reader, "hint_trust"),
            gateway_trust=_trust_list(reader, "gateway_trust"),
            bans=_ban_list(reader),
            alert=AlertBlock.from_reader(alert) if alert is not None else None,
            log=LogBlock.from_reader(log) if log is not None else None,
            process=ProcessBlock.from_reader(process) if process is not None else None,
        )

    @classmethod
    def from_file(cls, path):
        """Load and check ``path``; ``ConfigError`` names the first bad key."""
        return read_config_beside(path, cls.from_reader, IGNORED_KEYS, _log)
