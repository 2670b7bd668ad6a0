"""`python -m jobcontroller.embedded`: serve the embedded backend until Ctrl-C."""

from jobcontroller.embedded.server import main

raise SystemExit(main())
