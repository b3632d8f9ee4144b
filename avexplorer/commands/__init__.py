"""One module per CLI subcommand, each with ``add_parser(subparsers)`` and ``run(args) -> int``.

``COMMANDS`` lists them in the order ``avexplorer --help`` shows them.
"""

COMMANDS = ("train", "eval", "compare", "embed", "extract", "locate", "audit")
