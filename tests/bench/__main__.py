"""python -m tests.bench [--help]"""

from .run import main

raise SystemExit(main())
