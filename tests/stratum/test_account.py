"""Tests for viabtc.stratum.account."""

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.stratum.account import clamp_difficulty, parse_account, parse_password_difficulty


class ParseAccountTests(TestCase):
    def test_table(self):
        table = [
            ("alice", ("alice", "alice")),
            ("Alice.Rig1", ("alice", "rig1")),
            ("alice:rig1", ("alice", "rig1")),
            ("alice-rig1", ("alice", "rig1")),
            ("alice_rig1", ("alice", "rig1")),
            (" al ice . rig 1 ", ("alice", "rig1")),
            ("alice\t.rig1\n", ("alice", "rig1")),
            ("alice.rig1.extra.parts", ("alice", "rig1")),
            ("alice..rig1", ("alice", "rig1")),
            ("alice.", ("alice", "alice")),
            ("a" * 64 + ".w", ("a" * 64, "w")),
            ("alice." + "W" * 64, ("alice", "w" * 64)),
        ]
        for text, expected in table:
            self.assertEqual(parse_account(text), expected, text)

    def test_invalid(self):
        for text in ("", " ", ".alice", "a" * 65, "alice." + "w" * 65, "al!ce", "alice.ri@g", "ålice", None, 5):
            self.assertRaises(ValueError, parse_account, text)

    @given(st.text())
    def test_any_text_parses_or_raises_value_error(self, text):
        try:
            user, worker = parse_account(text)
        except ValueError:
            return
        self.assertTrue(user.isalnum() and user.isascii() and user == user.lower())
        self.assertTrue(worker.isalnum() and worker.isascii() and 1 <= len(worker) <= 64)


class PasswordDifficultyTests(TestCase):
    def test_table(self):
        table = [
            ("d=512", 512),
            ("D=512", 512),
            ("x,d=16", 16),
            ("d=0.001", 0.001),
            ("d=1e9", 4096),
            ("d=0.00000001", 0.0001),
            ("x", None),
            ("", None),
            ("d=", None),
            ("d=abc", None),
            ("d=0", None),
            ("d=-5", None),
            ("d=nan", None),
            ("d=inf", None),
            ("dd=5", None),
            (None, None),
        ]
        for password, expected in table:
            self.assertEqual(parse_password_difficulty(password, 0.0001, 4096), expected, password)

    def test_clamp(self):
        self.assertEqual(clamp_difficulty(5, 1, 4), 4)
        self.assertEqual(clamp_difficulty(0.5, 1, 4), 1)
        self.assertEqual(clamp_difficulty(2, 1, 4), 2)
