"""`python -m proxyd`: parse the command line, run the server."""

import sys

from proxyd.app.cli import main

sys.exit(main())
