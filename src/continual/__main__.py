"""Allow ``python -m continual``."""

from continual.cli import main

main()
