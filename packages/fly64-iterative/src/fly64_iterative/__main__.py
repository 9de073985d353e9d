import sys

from fly64_iterative.cli import main

sys.exit(main())
