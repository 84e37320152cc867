"""
bitcoinlib as an independent oracle for address encoding.

bitcoinlib writes a data directory and log file when imported, by default in
``~/.bitcoinlib``.  Tests point it at a private temporary directory (removed
at exit) before importing it; the production code never imports it.
"""

import atexit
import os
import shutil
import tempfile


def _import_encoding():
    if "BCL_DATA_DIR" not in os.environ:
        directory = tempfile.mkdtemp(prefix="viabtc-bitcoinlib-")
        atexit.register(shutil.rmtree, directory, True)
        os.environ["BCL_DATA_DIR"] = directory
    from bitcoinlib import encoding

    return encoding


encoding = _import_encoding()
