import sys

from skipmodel.cli import main

sys.exit(main())
