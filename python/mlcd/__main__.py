"""`python -m mlcd` entry point."""

from mlcd.cli import main

raise SystemExit(main())
