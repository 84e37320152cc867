"""
Remove the top-level ``tests`` package that bitcoinlib's wheel installs into
site-packages.  It would shadow viabtc's own ``tests`` package for ``trial``.
Only files that bitcoinlib's RECORD lists under ``tests/`` are removed.
"""

import os
import sysconfig
from importlib import metadata


def main():
    try:
        dist = metadata.distribution("bitcoinlib")
    except metadata.PackageNotFoundError:
        return
    site = sysconfig.get_paths()["purelib"]
    for f in dist.files or ():
        if f.parts and f.parts[0] == "tests":
            path = os.path.join(site, *f.parts)
            if os.path.exists(path):
                os.remove(path)
    for root, dirs, files in os.walk(os.path.join(site, "tests"), topdown=False):
        if not os.listdir(root):
            os.rmdir(root)


if __name__ == "__main__":
    main()
