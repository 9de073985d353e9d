from fly64_train.cli import main

raise SystemExit(main())
