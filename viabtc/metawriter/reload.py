# -*- test-case-name: tests.metawriter.test_reload -*-
"""
What a SIGHUP changes in a running metawriter (``viabtc.reload``): the trust
file is read again (as the seed's CLI ``loadtrust`` does, ref §8.6), also
when only its content changed, and ``flush_delay`` applies from the next
minute.  Anything else that changed needs a restart.
"""

import attrs

from viabtc.reload import ReloadReport, reloadable_changes

RELOADABLE = frozenset({"trust_file", "flush_delay"})


def reload_metawriter(service, new):
    """Apply ``new`` (a ``MetaWriterConfig``) to ``service`` where safe; a ``ReloadReport``."""
    old = service.config
    changed, restart = reloadable_changes(old, new, RELOADABLE)
    # The config loader has just read and checked the file.
    service.trust.load(new.trust_file)
    applied = ("trust_file",)
    if "flush_delay" in changed:
        if service.writer is not None:
            service.writer.flush_delay = new.flush_delay
        applied += ("flush_delay",)
    service.config = attrs.evolve(old, trust_file=new.trust_file, flush_delay=new.flush_delay)
    return ReloadReport(applied, restart)
