"""Base: what every layer may use, and which uses nothing of the project above it.

    errors    UserError (one line, exit 1), UsageError (exit 2), ModelError — what a user can cause
    sanitize  the one sanitizer for untrusted text on its way out (clean, dumps)
    atomic    the one writer for files that must not be lost (temp file + rename, a cross-process lock)
    settings  the generation settings: one frozen dataclass, changed through dataclasses.replace
    config    the config file (config.toml) and the state folder
"""
