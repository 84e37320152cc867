# -*- test-case-name: tests.jobmaster.test_config -*-
"""
The jobmaster's configuration: the seed's ``jobmaster.json`` (ref §10) plus
our keys.

The seed's sample must load unchanged, so merged-mining keys and the keys
the seed itself never used are accepted and reported as ignored.  What the
seed got wrong is checked here, at start-up, with one line naming the key:
payout addresses are verified (checksum, network, any kind) and the pool's
tag texts must fit in the 100-byte coinbase scriptSig at any height.

Our keys: ``network`` (address rules and the chain the node must be on),
``found_blocks_dir`` (where every found block's hex is written before it is
submitted), ``secret`` (HMAC of module packets), ``hint_trust`` (sources
allowed to send height hints), ``gateway_trust`` (sources allowed to
connect as gateways) and ``bans`` (IP addresses banned for good at every
gateway, beside the CLI's ``addban``; reloaded on SIGHUP).
"""

import ipaddress
import os

import attrs
from twisted.logger import Logger

from viabtc.bitcoin.address import InvalidAddress, address_to_script
from viabtc.bitcoin.coinbase import PERCENT_EPSILON, Recipient
from viabtc.bitcoin.network import get_network
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
from viabtc.jobmaster.jobs import JobSettings, Payout, check_coinbase_text

#: Keys of the seed's jobmaster config that we accept and ignore: merged
#: mining (not implemented), and keys the seed itself never read (§12.23).
IGNORED_KEYS = SEED_IGNORED | frozenset({
    "aux_coin", "rsk_coin", "vcash_coin", "aux_merkle_nonce", "aux_merkle_size",
    "aux_job_timeout", "rsk_job_interval", "http_svr", "jobmonitor", "ip_banned_time",
    "brother",
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


def _payout(reader, network):
    main = reader.required("main_coin_recipient", str)
    main_script = _script(main, reader.path("main_coin_recipient"), network)
    recipients = []
    total = 0.0
    for section in reader.sections("coin_recipients", required=False):
        address = section.required("address", str)
        script = _script(address, section.path("address"), network)
        percent = section.required("percent", float, in_range(0.0, 1.0))
        total += percent
        recipients.append(Recipient(script, percent))
    if total > 1 + PERCENT_EPSILON:
        raise ConfigError("coin_recipients", f"percentages sum to {total:g}, more than 1")
    return Payout(main_script, tuple(recipients))


@attrs.frozen
class JobmasterConfig:
    """The jobmaster's settings, validated."""

    svr: ServerBlock
    main_coin: CoinRPCBlock
    settings: JobSettings
    found_blocks_dir: str
    cli: object = None
    blockmasters: tuple = ()
    blockmaster_timeout: float = 60.0
    job_rebroadcast_timeout: float = 50.0
    spv_mining_timeout: float = 60.0
    secret: SecretBlock | None = None
    hint_trust: tuple | None = None
    gateway_trust: tuple | None = None
    bans: tuple = ()
    alert: AlertBlock | None = None
    log: LogBlock | None = None
    process: ProcessBlock | None = None

    @property
    def network(self):
        return self.settings.network

    @classmethod
    def from_reader(cls, reader, config_dir="."):
        try:
            network = get_network(reader.optional("network", str, "mainnet"))
        except ValueError as e:
            raise ConfigError("network", str(e)) from None
        payout = _payout(reader, network)
        main_coin = CoinRPCBlock.from_reader(reader.section("main_coin"))
        pool_name = reader.optional("pool_name", str, "")
        message = reader.optional("coinbase_message", str, "")
        try:
            check_coinbase_text(pool_name, "")
        except ValueError as e:
            raise ConfigError("pool_name", str(e)) from None
        try:
            check_coinbase_text(pool_name, message)
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
            found_blocks_dir=os.path.join(config_dir, found_dir),
            cli=cli_address(reader),
            blockmasters=reader.addresses("blockmaster", side="client", required=False),
            blockmaster_timeout=reader.optional("blockmaster_timeout", float, 60.0, positive),
            job_rebroadcast_timeout=reader.optional("job_rebroadcast_timeout", float, 50.0, positive),
            spv_mining_timeout=reader.optional("spv_mining_timeout", float, 60.0, non_negative),
            secret=SecretBlock.from_reader(reader),
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
