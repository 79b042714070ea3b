"""Plugin machinery: the hooks, the loading, and what plugins registered — built-ins and third parties alike.

    hookspecs  the hooks, each with its docstring, and `hookimpl` to mark an implementation
    loader     finds plugins: built-ins (DEFAULT_PLUGINS), entry points, --plugin, RECIPE_REPL_PLUGINS
    hookcall   calls each implementation on its own, so one plugin's crash is one line
    registry   checks and keeps what plugins register (commands, processors, features, loaders, renderers)
    listener   forwards generation events to the `on_*` hooks
    commands   the `:command` table and parser shared by the REPL and batch mode
    manager    Plugins: the manager that puts these together, one per run

A plugin needs only `from recipe_repl.plugin import hookimpl`.
"""

from recipe_repl.plugin.hookspecs import hookimpl

__all__ = ["hookimpl"]
