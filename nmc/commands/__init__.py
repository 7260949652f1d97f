"""CLI subcommands, one module each.

Every module here that defines a module-level ``commands`` list of click commands is picked up by
``nmc.cli`` (in module-name order), so adding a command never touches a shared file.
"""
