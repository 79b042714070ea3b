"""Frontends: how a person or a script reaches a session.

    cli           the `recipe-repl` command: the REPL on a terminal, batch mode on a pipe, subcommands
    cli_commands  the built-in subcommands (generate, score, plugins; train, export, eval and data lazily)
    startup       from command-line options and the config file to a running session
    repl          the interactive REPL (prompt-toolkit in, rich out), with completion and the toolbar
    live_view     a generation streamed word by word (tables, heat, pace) while the REPL waits
    batch         prompts and :commands from a stream, samples to stdout (never imports prompt-toolkit)
"""
