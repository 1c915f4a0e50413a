from bids_encoding.cli import main

raise SystemExit(main())
