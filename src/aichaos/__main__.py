import sys

from aichaos.cli import main

sys.exit(main())
