"""
The README's run command (``scripts/run-pool`` → ``viabtc.devnet.pool``) as a
user runs it: real bcoin, real redis-server, the roles as twistd processes
and viabtc-miner.  It must find blocks that the node accepts.  Waiting for
a statistics minute in Redis (``--hashrate``) is checked over the same
``watch`` in ``test_operating``, whose pool runs anyway, so that the suite
waits for a minute once.
"""

import os
import subprocess
import sys
import tempfile

from twisted.trial import unittest

from tests.support import require_service
from viabtc.devnet.bcoin import bcoin_executable


class LocalPoolTests(unittest.TestCase):
    timeout = 180

    def test_run_pool(self):
        require_service(bcoin_executable)
        run_dir = tempfile.mkdtemp(prefix="viabtc-run-pool-")
        result = subprocess.run(
            [sys.executable, "-m", "viabtc.devnet.pool", "--dir", run_dir,
             "--stratum-port", "0", "--duration", "150", "--blocks", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=170,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        output = result.stdout.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        blocks = [line for line in output.splitlines() if "accepted by the node" in line]
        self.assertGreaterEqual(len(blocks), 3, output)
        self.assertRegex(output, r"done: \d+ blocks found")
