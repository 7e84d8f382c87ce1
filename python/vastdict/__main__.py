import sys

from vastdict.cli import main

sys.exit(main())
