"""The `mirror` command line: thin commands that parse, call the library, and report."""

from mirror.cli.app import app, main

__all__ = ["app", "main"]
