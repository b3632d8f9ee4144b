from avexplorer.cli import main

raise SystemExit(main())
