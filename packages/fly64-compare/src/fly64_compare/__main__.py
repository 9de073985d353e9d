from fly64_compare.cli import main

raise SystemExit(main())
