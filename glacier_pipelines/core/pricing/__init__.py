"""What archiving and restoring cost, from a versioned price list per region.

The prices live in ``glacier_pipelines/data/pricing/<region>.toml`` (package data, with their
sources and dates in comments). This module only does the arithmetic, and writes every input
of it into the text of each :class:`CostLine` so a person can check the figure by hand.

Conventions (the same ones AWS uses for list prices, simplified where stated):

* ``GB`` is 2^30 bytes: AWS bills storage per "GB" = GiB. ``KB`` is 1,024 bytes.
* A month is 30 days. Storage for ``days`` days costs ``GB x rate x days / 30``. (AWS prorates
  storage by the hour over the actual calendar month; 30 days is the usual simplification and
  what AWS uses for the minimum-duration charge examples.)
* Only the first storage tier and the first paid data-transfer tier are used; volume discounts
  and the free tier (including the 100 GB/month of free transfer out) are NOT applied, so the
  estimates are upper bounds for small users and slightly high for very large ones.
* Money is computed with :class:`decimal.Decimal` from the literal prices in the TOML and only
  converted to ``float`` USD at the end; :attr:`Estimate.total` is rounded to 6 decimals.

By concern: ``model`` (the price list file as a pydantic model, loading, classes and tiers),
``estimates`` (the charges), ``figures`` (how amounts are written).
"""

from glacier_pipelines.core.pricing.estimates import (
    DAYS_PER_MONTH,
    GB,
    KB,
    CostLine,
    Estimate,
    early_deletion_charge,
    estimate_archive,
    estimate_move,
    estimate_restore,
)
from glacier_pipelines.core.pricing.model import (
    PRICED_CLASSES,
    ClassPricing,
    PriceListFile,
    Pricing,
    PricingError,
    TierPricing,
    available_regions,
    get_per_1000,
    load_pricing,
    max_restore_hours,
    parse_pricing,
    tiers_for,
)

__all__ = [
    "DAYS_PER_MONTH",
    "GB",
    "KB",
    "PRICED_CLASSES",
    "ClassPricing",
    "CostLine",
    "Estimate",
    "PriceListFile",
    "Pricing",
    "PricingError",
    "TierPricing",
    "available_regions",
    "early_deletion_charge",
    "estimate_archive",
    "estimate_move",
    "estimate_restore",
    "get_per_1000",
    "load_pricing",
    "max_restore_hours",
    "parse_pricing",
    "tiers_for",
]
