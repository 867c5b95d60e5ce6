"""``python -m wobert``: the command line."""
from wobert.cli import main

raise SystemExit(main())
