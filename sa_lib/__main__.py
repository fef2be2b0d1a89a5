"""`python -m sa_lib TARGET REFERENCE -o OUT`: the same as `sa-colorize`."""

from .cli.colorize import main

main()
