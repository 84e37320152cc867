# -*- test-case-name: tests.test_tap -*-
"""
The command-line options every role's twistd plugin shares.

Each role follows the pattern of Twisted's own ``twisted/names/tap.py``::

    # viabtc/<role>/tap.py
    from viabtc.tap import RoleOptions
    from viabtc.<role>.config import RoleConfig

    class Options(RoleOptions):
        config_class = RoleConfig          # has from_file(path) -> RoleConfig

    def makeService(options):
        config = options.config            # already loaded and validated
        ...build and return the role's MultiService...

and ``twisted/plugins/viabtc_roles.py`` names the module in one
``ServiceMaker`` line.  A bad configuration never reaches ``makeService``:
``postOptions`` turns the ``ConfigError`` into a ``UsageError`` whose message
is the one line naming the key, and twistd exits non-zero.
"""

from twisted.python import usage

from viabtc.config import ConfigError


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

    def postOptions(self):
        path = self["config"]
        if not path:
            raise usage.UsageError("--config is required")
        try:
            self.config = self.parse_config(path)
        except ConfigError as e:
            raise usage.UsageError(f"config error: {e}") from None
