"""One module per ``facestyle`` subcommand: ``add_parser(subparsers)`` and ``run(args)``."""
