"""Tests for viabtc.stratum.settings: the seed's vardiff keys, as gateway and mineragent read them."""

from twisted.trial.unittest import TestCase

from viabtc.config import ConfigError, ConfigReader
from viabtc.stratum.settings import read_vardiff

SEED = {"diff_min": 16, "diff_max": 1048576, "diff_default": 1024, "target_time": 4, "retarget_time": 120}


class ReadVardiffTests(TestCase):

    def test_seed_keys(self):
        settings = read_vardiff(ConfigReader(SEED))
        self.assertEqual((settings.diff_min, settings.diff_max, settings.diff_default,
                          settings.target_time, settings.retarget_time), (16, 1048576, 1024, 4, 120))

    def test_bad_values_name_their_key(self):
        for changes, key in (({"diff_max": 1}, "diff_max"), ({"diff_default": 1 << 21}, "diff_default"),
                             ({"target_time": 0}, "target_time"), ({"retarget_time": -1}, "retarget_time")):
            e = self.assertRaises(ConfigError, read_vardiff, ConfigReader(dict(SEED, **changes)))
            self.assertIn(key, str(e))

    def test_missing_key(self):
        data = dict(SEED)
        del data["diff_min"]
        e = self.assertRaises(ConfigError, read_vardiff, ConfigReader(data))
        self.assertIn("diff_min", str(e))
