"""Built-in plugins: commands, processors and the model loader, registered through the same hooks as
third-party ones (`recipe_repl.plugin.loader.DEFAULT_PLUGINS`). They never import one another: what
two of them share lives in the layers below (`generate.inspection`, `views`)."""
