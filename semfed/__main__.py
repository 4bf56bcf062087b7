import sys

from semfed.cli import main

sys.exit(main())
