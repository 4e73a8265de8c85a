import sys

from tradeoffs.book.runner import main

sys.exit(main())
