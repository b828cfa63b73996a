"""The `rolesearch` command, one module per command group (`main` registers them all). Nothing imports it."""
