"""python -m service: the dropnet command."""

from .cli import main

main()
