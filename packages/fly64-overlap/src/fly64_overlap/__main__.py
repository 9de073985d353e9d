from fly64_overlap.cli import main

raise SystemExit(main())
