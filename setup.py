"""
The one thing setup.cfg cannot declare: the optional C module
``viabtc.bitcoin._sha256d`` (double SHA-256 through OpenSSL's low-level
API, docs/benchmarks.md).  ``optional=True``: without a C compiler or the
OpenSSL headers the install still succeeds and viabtc hashes in Python,
about three times slower on the share path (the gateway says so at start).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "viabtc.bitcoin._sha256d",
            ["viabtc/bitcoin/_sha256d.c"],
            libraries=["crypto"],
            optional=True,
        )
    ]
)
