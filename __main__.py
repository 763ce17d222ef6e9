"""``python -m bayesgen`` runs the command line."""
import sys

from bayesgen.core.cli import main

sys.exit(main())
