from esctl.cli import main

main()
