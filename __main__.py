"""``python -m bayesgen`` runs the command line."""
import sys

from bayesgen.app.cli import main

sys.exit(main())
