"""Tests for viabtc.stratum.session."""

from collections import deque

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from viabtc.stratum.session import RESULT_RING, TRANSITIONS, Input, Session, State, sessions_table

from tests.stratum.jobs import IDENTITY, prepared_job


class CountingContext:
    """An in-test stand-in for the role's coinbase builder; counts calls."""

    def __init__(self):
        self.calls = 0

    def coinbase1_head(self, prepared, user):
        self.calls += 1
        return prepared.coinbase1 + user.encode()


def session():
    return Session(IDENTITY, "10.0.0.1", 4000, 0.0, 1.0)


class TransitionTests(TestCase):
    def test_table(self):
        s = session()
        self.assertIsNone(s.transition(Input.AUTHORIZE))
        self.assertIs(s.state, State.CONNECTED)
        self.assertIs(s.transition(Input.SUBSCRIBE), State.SUBSCRIBED)
        self.assertIs(s.transition(Input.AUTHORIZE), State.AUTHORIZED)
        self.assertIs(s.transition(Input.SUBSCRIBE), State.AUTHORIZED)
        self.assertIs(s.transition(Input.CLOSE), State.CLOSING)
        self.assertIsNone(s.transition(Input.SUBSCRIBE))
        self.assertIs(s.state, State.CLOSING)

    def test_every_state_can_close(self):
        for state in State:
            self.assertIs(TRANSITIONS[(state, Input.CLOSE)], State.CLOSING)


class AccountTests(TestCase):
    def test_authorize_and_submit_accounts(self):
        s = session()
        self.assertEqual(s.authorize("Alice.Rig1", 4), ("alice", "rig1", True))
        self.assertEqual(s.authorize("alice.rig1", 4), ("alice", "rig1", False))
        self.assertEqual((s.user, s.worker), ("alice", "rig1"))
        self.assertEqual(s.account_for_submit("Alice.Rig1", 4), ("alice", "rig1"))
        self.assertEqual(s.account_for_submit("ALICE_RIG1", 4), ("alice", "rig1"))
        self.assertIsNone(s.account_for_submit("bob.rig1", 4))
        self.assertIsNone(s.account_for_submit("!!", 4))

    def test_account_limit(self):
        s = session()
        s.authorize("a.1", 2)
        s.authorize("a.2", 2)
        self.assertRaises(ValueError, s.authorize, "a.3", 2)
        self.assertIsNone(s.account_for_submit("A.1", 2))


class DifficultyTests(TestCase):
    def test_set_keeps_previous_for_grace(self):
        s = session()
        s.pending = 4.0
        s.set_difficulty(2.0)
        self.assertEqual((s.difficulty, s.previous.difficulty, s.pending), (2.0, 1.0, None))

    def test_fixed_before_authorization_has_no_grace(self):
        s = session()
        s.vardiff = object()
        s.fix_difficulty(8.0, authorized=False)
        self.assertEqual((s.difficulty, s.previous.difficulty, s.vardiff), (8.0, 8.0, None))


class CoinbaseCacheTests(TestCase):
    def test_built_once_per_job(self):
        s = session()
        s.authorize("alice", 4)
        context = CountingContext()
        prepared = prepared_job()
        prefix, hex_ = s.coinbase(prepared, context)
        coinbase1 = prepared.coinbase1 + b"alice" + IDENTITY.nonce_id.to_bytes(4, "little")
        self.assertEqual(prefix, coinbase1 + IDENTITY.extranonce1)
        self.assertEqual(hex_, coinbase1.hex().encode())
        self.assertEqual(s.coinbase1_tail_hex, coinbase1[-4:].hex().encode())
        s.coinbase(prepared, context)
        self.assertEqual(context.calls, 1)
        # the same id for a different job (after a jobmaster restart) is rebuilt
        s.coinbase(prepared_job(height=5), context)
        self.assertEqual(context.calls, 2)


class ResultRingTests(TestCase):
    def test_closes_only_when_full_and_over_60_percent(self):
        s = session()
        verdicts = [s.record(False) for _ in range(RESULT_RING)]
        self.assertEqual(verdicts, [False] * (RESULT_RING - 1) + [True])

    def test_window_slides(self):
        s = session()
        for _ in range(RESULT_RING):
            s.record(True)
        # 153 invalid of 256 is 59.8 %: kept; the 154th crosses 60 %
        self.assertFalse(any(s.record(False) for _ in range(153)))
        self.assertTrue(s.record(False))
        for _ in range(RESULT_RING):
            s.record(True)
        self.assertFalse(s.record(False))

    @given(st.lists(st.booleans(), max_size=3 * RESULT_RING))
    def test_same_verdicts_as_a_plain_window(self, results):
        """The ring (with its shortcut while all of it is valid) against the last RESULT_RING results kept whole."""
        s = session()
        window = deque(maxlen=RESULT_RING)
        for valid in results:
            window.append(valid)
            expected = len(window) == RESULT_RING and window.count(False) > 0.6 * RESULT_RING
            self.assertEqual(s.record(valid), expected)


class SessionsTableTests(TestCase):
    def test_oldest_first_with_a_total(self):
        late = Session(IDENTITY, "10.0.0.2", 4001, 1_700_000_060.0, 2.0)
        late.authorize("alice.rig1", 4)
        late.user_agent = "cgminer/4.10"
        late.share_valid, late.share_error = 7, 1
        early = session()
        self.assertEqual(sessions_table([late, early]), (
            "peer user worker difficulty valid error connected user_agent\n"
            "10.0.0.1:4000 - - 1 0 0 1970-01-01T00:00:00Z -\n"
            "10.0.0.2:4001 alice rig1 2 7 1 2023-11-14T22:14:20Z cgminer/4.10\n"
            "total 2\n"))
