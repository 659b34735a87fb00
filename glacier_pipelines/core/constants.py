"""Sizes, storage classes and restore tiers: defined once, imported everywhere.

S3's own vocabulary, in one order (coldest first) so that messages and tables list them alike.
"""

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Archive classes take a minimum storage duration and (for GLACIER and DEEP_ARCHIVE) a restore before reading.
ARCHIVE_CLASSES = ("DEEP_ARCHIVE", "GLACIER", "GLACIER_IR")
STORAGE_CLASSES = ARCHIVE_CLASSES + ("STANDARD",)
# Classes S3 cannot read (GetObject, CopyObject) from without a restored copy.
UNREADABLE_CLASSES = ("DEEP_ARCHIVE", "GLACIER")
# Classes a lifecycle rule may transition objects into.
TRANSITION_CLASSES = ARCHIVE_CLASSES

# Restore tiers, cheapest first; which a class accepts is in TIERS_BY_CLASS.
TIERS = ("Bulk", "Standard", "Expedited")
TIERS_BY_CLASS = {
    "GLACIER": ("Bulk", "Standard", "Expedited"),
    "DEEP_ARCHIVE": ("Bulk", "Standard"),
}
