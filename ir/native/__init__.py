"""Family-native node kinds: each chip family's integer parameters held exactly.

Importing this package registers the kinds of every family (and their integer kernels).
"""

from ir.native import brainscales2, loihi, truenorth  # noqa: F401

FAMILIES = ("truenorth", "loihi", "brainscales2")
