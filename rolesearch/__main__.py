"""`python -m rolesearch`: the `rolesearch` command."""

from rolesearch.cli.main import main

main()
