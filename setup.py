"""
The one thing setup.cfg cannot declare: the optional C modules of the
share path (docs/benchmarks.md): ``viabtc.bitcoin._sha256d`` (double
SHA-256 through OpenSSL's low-level API) and ``viabtc.stratum._submit``
(the common ``mining.submit`` line read in one pass).  ``optional=True``:
without a C compiler or the OpenSSL headers the install still succeeds and
viabtc does the same in Python, two to three times slower per share (the
gateway says so at start).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "viabtc.bitcoin._sha256d",
            ["viabtc/bitcoin/_sha256d.c"],
            libraries=["crypto"],
            optional=True,
        ),
        Extension("viabtc.stratum._submit", ["viabtc/stratum/_submit.c"], optional=True),
    ]
)
