"""``python -m nmc`` is the same as the ``nmc`` command."""

from nmc.cli import main

if __name__ == "__main__":
    main()
