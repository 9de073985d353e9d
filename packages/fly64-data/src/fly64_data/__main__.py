from fly64_data.cli import main

raise SystemExit(main())
