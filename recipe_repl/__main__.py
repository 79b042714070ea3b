"""`python -m recipe_repl` runs the `recipe-repl` command."""

from recipe_repl.frontends.cli import main

if __name__ == "__main__":
    main()
