from fly64_manifest.cli import main

raise SystemExit(main())
