"""TrueNorth-family native kinds (see ``../shared/hardware.md`` section 1)."""
