"""BrainScaleS-2-family native kinds (see ``../shared/hardware.md`` section 3)."""
