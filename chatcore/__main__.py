from chatcore.cli import main

main()
