import sys

from termmon.cli import main

sys.exit(main())
