from pm_agent_stub.cli import main

raise SystemExit(main())
