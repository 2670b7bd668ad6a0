"""`python -m jobcontroller`: the command line (see jobcontroller.ops.cli)."""

from jobcontroller.ops.cli import main

raise SystemExit(main())
