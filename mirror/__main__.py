"""`python -m mirror` runs the command-line interface."""

from mirror.cli import main

main()
