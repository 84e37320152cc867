"""
The README's run command (``scripts/run-pool`` → ``viabtc.devnet.pool``) as a
user runs it: real bcoin, real redis-server, the roles as twistd processes
and viabtc-miner.  It must find blocks that the node accepts and show the
statistics minute read back from Redis.
"""

import os
import subprocess
import sys
import tempfile

from twisted.trial import unittest

from tests.support import require_service
from viabtc.devnet.bcoin import bcoin_executable


class LocalPoolTests(unittest.TestCase):
    # The metawriter writes a minute only after it has ended (up to ~2 min).
    timeout = 300

    def test_run_pool(self):
        require_service(bcoin_executable)
        run_dir = tempfile.mkdtemp(prefix="viabtc-run-pool-")
        result = subprocess.run(
            [sys.executable, "-m", "viabtc.devnet.pool", "--dir", run_dir,
             "--stratum-port", "0", "--duration", "240", "--blocks", "3", "--hashrate"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=290,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        output = result.stdout.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        blocks = [line for line in output.splitlines() if "accepted by the node" in line]
        self.assertGreaterEqual(len(blocks), 3, output)
        self.assertIn("btc:m:share=", output)
        self.assertIn("statistics in redis", output)
