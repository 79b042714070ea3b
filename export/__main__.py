"""`python -m recipe_repl.export RUN_DIR --out FILE.onnx` without the full CLI."""

import sys

import click
from recipe_repl.export.commands import export_command

from recipe_repl.base.errors import UserError
from recipe_repl.base.sanitize import clean

if __name__ == "__main__":
    try:
        export_command.main(prog_name="python -m recipe_repl.export", standalone_mode=False)
    except UserError as e:
        click.echo(clean(f"error: {e}"), err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
