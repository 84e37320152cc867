# -*- test-case-name: tests.test_reload -*-
"""
Live reload on SIGHUP: what can change safely changes, the rest waits for a
restart and is named in the log.

The seed reloaded nothing but bitpeer's peer file (SIGUSR1, ref §11); a
change of the ban list or the coinbase message needed the CLI or a restart.
Here ``kill -HUP <pid>`` (``systemctl reload``) re-reads the role's config
file with the same validation as at start-up:

- a file that does not load (bad JSON, a bad value) changes nothing: the
  role keeps running on its current configuration and logs why, naming the
  key;
- otherwise the role's ``reload(new_config)`` applies what it can and
  returns a ``ReloadReport``; top-level keys that changed but are not
  reloadable (listen addresses, links...) are named as needing a restart.

A role takes part by giving its service a ``reload(config)`` method and a
``reloadable`` set of config field names; ``reloadable_changes`` computes
the split for it.
"""

import signal

import attrs
from twisted.application import service
from twisted.logger import Logger

from viabtc.config import ConfigError


@attrs.frozen
class ReloadReport:
    """``applied``: what changed now; ``restart``: changed keys that need a restart."""

    applied: tuple = ()
    restart: tuple = ()


def changed_fields(old, new):
    """Names of the attrs fields whose values differ between two configs."""
    return tuple(f.name for f in attrs.fields(type(old)) if getattr(old, f.name) != getattr(new, f.name))


def reloadable_changes(old, new, reloadable):
    """``(changed reloadable fields, changed fields that need a restart)``."""
    changed = changed_fields(old, new)
    return (tuple(n for n in changed if n in reloadable), tuple(n for n in changed if n not in reloadable))


class HangupReload(service.Service):
    """
    While running, SIGHUP reloads ``path`` through ``parse`` (the role's
    ``RoleOptions.parse_config``) into ``target.reload``.  The signal
    handler only schedules the work on the reactor.
    """

    _log = Logger()

    def __init__(self, role, path, parse, target, reactor):
        self.role = role
        self.path = path
        self._parse = parse
        self._target = target
        self._reactor = reactor
        self._previous = None

    def startService(self):
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._signalled)

    def stopService(self):
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None

    def _signalled(self, signum, frame):
        self._reactor.callFromThread(self.reload)

    def reload(self):
        """Re-read the config file and apply it; returns the ``ReloadReport`` (None when refused)."""
        try:
            config = self._parse(self.path)
        except ConfigError as e:
            self._log.error("reload refused, still running on the previous configuration: {path}: {error}",
                            path=self.path, error=str(e), role=self.role)
            return None
        except Exception as e:  # an unreadable file, a validator's surprise: never kill the role
            self._log.error("reload refused, still running on the previous configuration: {path}: {error}",
                            path=self.path, error=f"{type(e).__name__}: {e}", role=self.role)
            return None
        reload = getattr(self._target, "reload", None)
        if reload is None:
            self._log.warn("reload: {role} reloads nothing; restart it to apply {path}",
                           path=self.path, role=self.role)
            return None
        try:
            report = reload(config)
        except Exception:
            self._log.failure("reload failed part way; restart {role} to be sure of its configuration",
                              role=self.role)
            return None
        self._log.info("reloaded {path}: applied {applied}; needs a restart: {restart}", path=self.path,
                       applied=", ".join(report.applied) or "nothing changed",
                       restart=", ".join(report.restart) or "nothing", role=self.role)
        return report
