from integration_signals.cli import main

main()
