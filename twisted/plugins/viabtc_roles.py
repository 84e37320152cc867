"""
twistd plugins, one per viabtc role: ``twistd -n viabtc-<role> --config FILE``.

Each line only names the role's ``tap`` module; all logic lives there, as in
Twisted's own ``twisted_names`` plugin.
"""

from twisted.application.service import ServiceMaker

viabtcJobmaster = ServiceMaker(
    "viabtc-jobmaster",
    "viabtc.jobmaster.tap",
    "Builds mining jobs from bitcoind templates and submits found blocks.",
    "viabtc-jobmaster",
)
viabtcGateway = ServiceMaker(
    "viabtc-gateway",
    "viabtc.gateway.tap",
    "Stratum server for miners and mineragents; checks shares.",
    "viabtc-gateway",
)
viabtcMetawriter = ServiceMaker(
    "viabtc-metawriter",
    "viabtc.metawriter.tap",
    "Writes aggregated hashrate records to Redis in the seed's key format.",
    "viabtc-metawriter",
)
viabtcMetarelay = ServiceMaker(
    "viabtc-metarelay",
    "viabtc.metarelay.tap",
    "Store-and-forward relay of statistics packets to a metawriter.",
    "viabtc-metarelay",
)
viabtcAlertcenter = ServiceMaker(
    "viabtc-alertcenter",
    "viabtc.alertcenter.tap",
    "Collects critical logs from every role into the Redis list alert:message.",
    "viabtc-alertcenter",
)
viabtcBitpeer = ServiceMaker(
    "viabtc-bitpeer",
    "viabtc.bitpeer.tap",
    "Relays blocks over Bitcoin P2P and hints new blocks to the jobmasters.",
    "viabtc-bitpeer",
)
viabtcPoolbench = ServiceMaker(
    "viabtc-poolbench",
    "viabtc.poolbench.tap",
    "Watches other pools' Stratum jobs and hints new heights to the jobmaster.",
    "viabtc-poolbench",
)
viabtcBlockmaster = ServiceMaker(
    "viabtc-blockmaster",
    "viabtc.blockmaster.tap",
    "Relays the pool's and foreign blocks between regions as thin blocks.",
    "viabtc-blockmaster",
)
viabtcMineragent = ServiceMaker(
    "viabtc-mineragent",
    "viabtc.mineragent.tap",
    "Stratum server inside a mining farm; carries its miners to a gateway over one agent connection.",
    "viabtc-mineragent",
)
viabtcDashboard = ServiceMaker(
    "viabtc-dashboard",
    "viabtc.dashboard.tap",
    "Web dashboard of the pool's hashrate, shares, blocks and workers, read from Redis.",
    "viabtc-dashboard",
)
