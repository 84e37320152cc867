# -*- test-case-name: tests.metawriter.test_reload -*-
"""
What a SIGHUP changes in a running metawriter (``viabtc.reload``): the trust
file is read again (as the seed's CLI ``loadtrust`` does, ref §8.6), also
when only its content changed.  Anything else that changed needs a restart.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes

RELOADABLE = frozenset({"trust_file"})


def reload_metawriter(service, new):
    """Apply ``new`` (a ``MetaWriterConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    _changed, restart = reloadable_changes(old, new, RELOADABLE)
    # The config loader has just read and checked the file.
    service.trust.load(new.trust_file)
    service.config = attrs.evolve(old, trust_file=new.trust_file)
    return ReloadReport(("trust_file",), restart)
