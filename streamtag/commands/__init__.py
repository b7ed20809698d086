"""One module per subcommand. Each has ``register(subparsers)``, which adds its parser and sets ``run``."""
