# -*- test-case-name: tests.test_tap -*-
"""
The command line and service construction every role's twistd plugin shares.

Each role follows the pattern of Twisted's own ``twisted/names/tap.py``::

    # viabtc/<role>/tap.py
    from viabtc.tap import RoleOptions, make_role_service

    class Options(RoleOptions):
        config_class = RoleConfig          # has from_file(path) -> RoleConfig

    def makeService(options, reactor=None):
        return make_role_service(ROLE, options, RoleService, reactor)

and ``twisted/plugins/viabtc_roles.py`` names the module in one
``ServiceMaker`` line.  A bad configuration never reaches ``makeService``:
``postOptions`` turns the ``ConfigError`` into a ``StartupError``, so twistd
prints the one line naming the key (not its whole help text first) and exits
non-zero.
"""

from twisted.python import usage

from viabtc.config import ConfigError, ConfigReader, ServerBlock
from viabtc.log import install_role_logging
from viabtc.metrics import RoleMetrics, metrics_site
from viabtc.reload import HangupReload
from viabtc.service import StartupError, listen_stream


def metrics_binds(path, config, reader=None):
    """
    Where a role serves ``/metrics`` on its own: our ``metrics`` key (an
    address or a list), else the seed's ``http_svr`` when the role's config
    does not use it itself (the jobmaster's, ref §10); ``()`` for neither.
    ``reader`` reads the configuration already loaded (default: the file
    ``path``).
    """
    if reader is None:
        reader = ConfigReader.from_file(path)
    binds = reader.addresses("metrics", side="server", required=False)
    if any(a.is_datagram for a in binds):
        raise ConfigError("metrics", "needs tcp addresses (HTTP)")
    if binds:
        return tuple(binds)
    if not hasattr(config, "http_svr") and reader.is_object("http_svr"):
        return ServerBlock.from_reader(reader.section("http_svr")).stream_binds
    return ()


class RoleOptions(usage.Options):
    """
    ``--config/-c FILE`` (required).  Subclasses set ``config_class`` (with
    a ``from_file(path)`` class method) or override ``parse_config``; the
    loaded configuration is ``options.config``.
    """

    optParameters = [
        ["config", "c", None, "The role's JSON configuration file (the seed's config.json is accepted)."],
    ]

    config_class = None

    def parse_config(self, path):
        """Load and validate the configuration at ``path``."""
        if self.config_class is None:
            raise NotImplementedError(f"{type(self).__name__} sets no config_class and overrides no parse_config")
        return self.config_class.from_file(path)

    def parse_metrics(self, path, config):
        """The addresses to serve ``/metrics`` on (``metrics_binds``)."""
        return metrics_binds(path, config)

    def postOptions(self):
        path = self["config"]
        if not path:
            # A command-line mistake: here the help text is what the operator needs.
            raise usage.UsageError("--config is required")
        try:
            self.config = self.parse_config(path)
            self.metrics_binds = self.parse_metrics(path, self.config)
        except ConfigError as e:
            raise StartupError(f"config error: {e}") from None


def make_role_service(role, options, build, reactor=None):
    """
    The service of ``role`` for ``options.config``: the config's ``process``
    limits applied, ``build(config, reactor)``, then role logging installed
    (its handle kept as ``service.role_logging``, so a test can remove it).

    Every role also gets: ``service.metrics`` (the role's own
    ``RoleMetrics``, or one with the process metrics only) served on
    ``options.metrics_binds``, and SIGHUP reloading its config file into
    ``service.reload`` (``viabtc.reload``).
    """
    if reactor is None:
        from twisted.internet import reactor
    config = options.config
    if config.process is not None:
        config.process.apply()
    service = build(config, reactor)
    if getattr(service, "metrics", None) is None:
        service.metrics = RoleMetrics(role)
    for address in getattr(options, "metrics_binds", ()):
        listen_stream(service, address, metrics_site(service.metrics, reactor), reactor)
    if options.get("config"):
        HangupReload(role, options["config"], options.parse_config, service, reactor).setServiceParent(service)
    service.role_logging = install_role_logging(role, config, reactor)
    return service
