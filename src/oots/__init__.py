"""oots — an open-source implementation of the EU Once-Only Technical System.

The package is layered (see ``docs/architecture.md``): ``oots.edm`` (model), ``oots.validation``
(rules) and ``oots.as4`` (protocol core) do no I/O of their own; the services, the store and the
composition layers build on them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oots")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
