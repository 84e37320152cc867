# -*- test-case-name: tests.stratum.test_settings -*-
"""
The seed's Stratum keys that both Stratum servers read, the gateway's config
and the mineragent's (ref §10): their vardiff keys are the same five, read
and checked the same way, so one reader serves both configs.
"""

from viabtc.config import ConfigError, positive
from viabtc.stratum.vardiff import VarDiffSettings

#: The seed's vardiff keys, at the top level of both configs.
VARDIFF_KEYS = ("diff_min", "diff_max", "diff_default", "target_time", "retarget_time")


def read_vardiff(reader):
    """``VarDiffSettings`` from the seed's keys; ``ConfigError`` names the bad one."""
    values = {key: reader.required(key, float, positive) for key in VARDIFF_KEYS}
    if values["diff_min"] > values["diff_max"]:
        raise ConfigError("diff_max", f"{values['diff_max']:g} is below diff_min {values['diff_min']:g}")
    try:
        return VarDiffSettings(**values)
    except ValueError as e:
        raise ConfigError("diff_default", str(e)) from None
