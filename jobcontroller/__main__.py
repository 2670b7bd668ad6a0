"""`python -m jobcontroller`: the command line (see jobcontroller.cli)."""

from jobcontroller.cli import main

raise SystemExit(main())
