from safeeraser.eval.command import main

raise SystemExit(main())
