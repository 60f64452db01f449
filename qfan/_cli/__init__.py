"""The ``qfan`` command line (``python -m qfan``): the parser and ``main`` here, the commands beside."""

from ._main import main

__all__ = ["main"]
