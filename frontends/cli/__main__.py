from modelyzer.frontends.cli.main import main

main()
