"""SIGHUP re-reads the role's config file: applied, refused with the reason, or named for a restart."""

import json
import os
import signal

import attrs
from twisted.internet import reactor
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.roles import wait_for
from viabtc.config import ConfigReader, non_empty
from viabtc.reload import HangupReload, ReloadReport, changed_fields, reloadable_changes


@attrs.frozen
class Sample:
    bans: tuple = ()
    svr: str = "tcp@127.0.0.1:1"


def parse(path):
    reader = ConfigReader.from_file(path)
    return Sample(bans=reader.list("bans", str, non_empty, required=False), svr=reader.required("svr", str))


class Target:
    def __init__(self):
        self.config = Sample()
        self.reports = []

    def reload(self, new):
        applied, restart = reloadable_changes(self.config, new, {"bans"})
        self.config = attrs.evolve(self.config, bans=new.bans)
        report = ReloadReport(applied, restart)
        self.reports.append(report)
        return report


class DiffTests(TestCase):
    def test_changed_fields(self):
        self.assertEqual(changed_fields(Sample(), Sample(bans=("1.2.3.4",))), ("bans",))
        self.assertEqual(reloadable_changes(Sample(), Sample(("a",), "x"), {"bans"}), (("bans",), ("svr",)))


class HangupTests(TestCase):
    def write(self, path, data):
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))

    async def test_sighup_reloads_and_a_broken_file_keeps_the_old_config(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        path = os.path.abspath(self.mktemp())
        self.write(path, {"svr": "tcp@127.0.0.1:1", "bans": ["10.0.0.1"]})
        target = Target()
        hangup = HangupReload("sample", path, parse, target, reactor)
        before = signal.getsignal(signal.SIGHUP)
        hangup.startService()
        self.addCleanup(hangup.stopService)

        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: target.reports)
        self.assertEqual(target.reports, [ReloadReport(("bans",), ())])
        self.assertEqual(target.config.bans, ("10.0.0.1",))
        self.assertTrue(any("applied bans; needs a restart: nothing" in formatEvent(e) for e in events))

        self.write(path, '{"svr": "tcp@127.0.0.1:1", "bans": [""]')
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: any("reload refused" in formatEvent(e) for e in events))
        self.assertEqual(len(target.reports), 1)
        self.assertEqual(target.config.bans, ("10.0.0.1",))

        self.write(path, {"svr": "tcp@127.0.0.1:2", "bans": [""]})
        self.assertIsNone(hangup.reload())
        (refused,) = [formatEvent(e) for e in events if "bans[0]" in formatEvent(e)]
        self.assertIn("still running on the previous configuration", refused)

        self.write(path, {"svr": "tcp@127.0.0.1:2"})
        self.assertEqual(hangup.reload(), ReloadReport(("bans",), ("svr",)))
        hangup.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), before)

    def test_a_role_without_reload_is_told(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        path = os.path.abspath(self.mktemp())
        self.write(path, {"svr": "x"})
        self.assertIsNone(HangupReload("sample", path, parse, object(), reactor).reload())
        self.assertIn("reloads nothing", formatEvent(events[-1]))

