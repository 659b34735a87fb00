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
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

GB = 1024**3  # AWS bills storage per GB = 2^30 bytes (a GiB); every "GB" here means that.
KB = 1024
DAYS_PER_MONTH = 30  # a storage month is 30 days when prorating days (see the module docstring)

STORAGE_CLASSES = ("STANDARD", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
_TIERS = {
    "GLACIER": ("Expedited", "Standard", "Bulk"),
    "DEEP_ARCHIVE": ("Standard", "Bulk"),
}
_PACKAGE = "glacier_pipelines.data.pricing"
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLASS_KEYS = (
    "storage_per_gb_month",
    "put_per_1000",
    "min_storage_days",
    "min_billable_object_bytes",
    "overhead_standard_bytes",
    "overhead_class_bytes",
    "restore_required",
    "retrieval_per_gb",
)
_TIER_KEYS = ("retrieval_per_gb", "requests_per_1000", "max_restore_hours")
_TRANSFER_KEYS = ("internet_per_gb", "free_gb_per_month")


class PricingError(ValueError):
    """A price list that cannot be loaded, or a cost question the model refuses; the message says why."""


# -- the loaded price list -----------------------------------------------------------------------


@dataclass(frozen=True)
class TierPricing:
    """Restore prices and documented delay for one retrieval tier of an archive class."""

    tier: str
    retrieval_per_gb: float
    requests_per_1000: float
    max_restore_hours: float


@dataclass(frozen=True)
class ClassPricing:
    """Prices and billing rules of one storage class (see the TOML for what each field means)."""

    storage_class: str
    storage_per_gb_month: float
    put_per_1000: float
    min_storage_days: int
    min_billable_object_bytes: int
    overhead_standard_bytes: int
    overhead_class_bytes: int
    restore_required: bool
    retrieval_per_gb: float
    tiers: Mapping[str, TierPricing] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Pricing:
    """One region's price list as loaded from its TOML file; ``raw`` is the parsed file, read-only."""

    version: str
    region: str
    currency: str
    classes: Mapping[str, ClassPricing]
    transfer_out_per_gb: float
    transfer_out_free_gb_per_month: float
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    def storage_class(self, storage_class: str) -> ClassPricing:
        """The prices of ``storage_class``; :class:`PricingError` naming the known ones otherwise."""
        name = _class_name(storage_class)
        try:
            return self.classes[name]
        except KeyError:
            raise PricingError(
                f"unknown storage class {storage_class!r}; the {self.region} price list has: "
                + ", ".join(sorted(self.classes))
            ) from None


def available_regions() -> tuple[str, ...]:
    """Regions that have a price list in the package data."""
    return tuple(
        sorted(entry.name[: -len(".toml")] for entry in resources.files(_PACKAGE).iterdir() if entry.name.endswith(".toml"))
    )


def load_pricing(region: str = "us-east-1") -> Pricing:
    """Load and validate the price list of ``region`` from the package data (cached; the result is immutable).

    An unknown region raises :class:`PricingError` naming the regions that have a price list.
    """
    available = available_regions()
    if not isinstance(region, str) or not _REGION_RE.fullmatch(region) or region not in available:
        raise PricingError(f"no price list for region {region!r}; available: {', '.join(available) or 'none'}")
    return _load_pricing(region)


@functools.lru_cache(maxsize=None)
def _load_pricing(region: str) -> Pricing:
    source = f"{_PACKAGE}/{region}.toml"
    try:
        raw = tomllib.loads(resources.files(_PACKAGE).joinpath(f"{region}.toml").read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PricingError(f"{source}: not valid TOML: {exc}") from exc
    pricing = parse_pricing(raw, source=source)
    if pricing.region != region:
        raise PricingError(f"{source}: says region = {pricing.region!r}, expected {region!r}")
    return pricing


def parse_pricing(raw: Mapping[str, Any], *, source: str = "price list") -> Pricing:
    """Validate a parsed price list (the TOML's structure) and build a :class:`Pricing` from it."""

    def need(table: Mapping[str, Any], key: str, where: str) -> Any:
        if not isinstance(table, Mapping) or key not in table:
            raise PricingError(f"{source}: missing {where}{key}")
        return table[key]

    def number(table: Mapping[str, Any], key: str, where: str) -> float:
        value = need(table, key, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise PricingError(f"{source}: {where}{key} must be a non-negative number, not {value!r}")
        return float(value)

    def integer(table: Mapping[str, Any], key: str, where: str) -> int:
        value = need(table, key, where)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PricingError(f"{source}: {where}{key} must be a non-negative integer, not {value!r}")
        return value

    version = need(raw, "version", "")
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise PricingError(f"{source}: version must be a 'YYYY-MM-DD' string, not {version!r}")
    region = need(raw, "region", "")
    currency = need(raw, "currency", "")
    if currency != "USD":
        raise PricingError(f"{source}: currency must be 'USD' (the model formats dollars), not {currency!r}")
    transfer = need(raw, "transfer_out", "")
    transfer_per_gb = number(transfer, "internet_per_gb", "transfer_out.")
    free_gb = number(transfer, "free_gb_per_month", "transfer_out.")

    tables = need(raw, "classes", "")
    classes: dict[str, ClassPricing] = {}
    for name in STORAGE_CLASSES:
        table = need(tables, name, "classes.")
        where = f"classes.{name}."
        restore_required = need(table, "restore_required", where)
        if not isinstance(restore_required, bool):
            raise PricingError(f"{source}: {where}restore_required must be true or false")
        if restore_required != (name in _TIERS):
            raise PricingError(f"{source}: {where}restore_required is {restore_required}, the model expects the opposite")
        tier_tables = table.get("tiers", {})
        if sorted(tier_tables) != sorted(_TIERS.get(name, ())):
            raise PricingError(
                f"{source}: {where}tiers has {sorted(tier_tables)}, expected {sorted(_TIERS.get(name, ()))}"
            )
        tiers = {
            tier: TierPricing(
                tier=tier,
                retrieval_per_gb=number(tier_tables[tier], "retrieval_per_gb", f"{where}tiers.{tier}."),
                requests_per_1000=number(tier_tables[tier], "requests_per_1000", f"{where}tiers.{tier}."),
                max_restore_hours=number(tier_tables[tier], "max_restore_hours", f"{where}tiers.{tier}."),
            )
            for tier in _TIERS.get(name, ())
        }
        classes[name] = ClassPricing(
            storage_class=name,
            storage_per_gb_month=number(table, "storage_per_gb_month", where),
            put_per_1000=number(table, "put_per_1000", where),
            min_storage_days=integer(table, "min_storage_days", where),
            min_billable_object_bytes=integer(table, "min_billable_object_bytes", where),
            overhead_standard_bytes=integer(table, "overhead_standard_bytes", where),
            overhead_class_bytes=integer(table, "overhead_class_bytes", where),
            restore_required=restore_required,
            retrieval_per_gb=number(table, "retrieval_per_gb", where),
            tiers=MappingProxyType(tiers),
        )
    return Pricing(
        version=version,
        region=str(region),
        currency=currency,
        classes=MappingProxyType(classes),
        transfer_out_per_gb=transfer_per_gb,
        transfer_out_free_gb_per_month=free_gb,
        raw=_freeze(raw),
    )


def tiers_for(storage_class: str) -> tuple[str, ...]:
    """Restore tiers of a class: GLACIER has three, DEEP_ARCHIVE two (no Expedited), the others none."""
    return _TIERS.get(_class_name(storage_class), ())


def max_restore_hours(pricing: Pricing, storage_class: str, tier: str) -> float:
    """The documented "typically within" delay of a restore, in hours (5 minutes = 5/60)."""
    cls = _restorable(pricing, storage_class)
    return cls.tiers[_tier_name(cls, tier)].max_restore_hours


# -- estimates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLine:
    """One charge; ``item`` shows the inputs of the arithmetic, ``usd`` the result (unrounded)."""

    item: str
    usd: float


@dataclass(frozen=True)
class Estimate:
    """A cost estimate as the list of its charges."""

    lines: tuple[CostLine, ...]

    @property
    def total(self) -> float:
        """Sum of the lines in USD, rounded half-up to 6 decimals.

        Each line is taken as the decimal its float prints as (``repr``), so 0.0000005 rounds up
        as a person expects, not down as its binary value 4.99999...e-7 would.
        """
        exact = sum((_dec(float(line.usd)) for line in self.lines), Decimal(0))
        return float(exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))

    def as_dict(self) -> dict:
        return {"total": self.total, "lines": [{"item": line.item, "usd": line.usd} for line in self.lines]}


def estimate_restore(
    pricing: Pricing,
    *,
    storage_class: str,
    tier: str,
    size_bytes: int,
    days: int,
    objects: int = 1,
    transfer_out_bytes: int | None = None,
) -> Estimate:
    """What restoring ``objects`` objects totalling ``size_bytes`` from an archive class costs.

    Lines: retrieval per GB by class and tier; retrieval requests per 1,000 objects by tier; the
    temporary restored copy, billed at STANDARD's rate for ``days`` days (GB-month x days/30);
    data transfer out to the internet of ``transfer_out_bytes`` (default ``size_bytes``, 0 leaves
    the line out; the 100 GB/month free allowance is not applied). The archived object goes on
    being billed at its own class meanwhile; that is the archive's cost, not the restore's.

    Refused with :class:`PricingError`: classes that need no restore (STANDARD, GLACIER_IR),
    unknown classes and tiers, Expedited for DEEP_ARCHIVE, negative sizes, ``days`` < 1,
    ``objects`` < 1.
    """
    cls = _restorable(pricing, storage_class)
    tier = _tier_name(cls, tier)
    size = _non_negative_int(size_bytes, "size_bytes")
    days = _positive_int(days, "days")
    objects = _positive_int(objects, "objects")
    transfer = size if transfer_out_bytes is None else _non_negative_int(transfer_out_bytes, "transfer_out_bytes")
    prices = cls.tiers[tier]
    standard = pricing.storage_class("STANDARD")

    with localcontext() as ctx:
        ctx.prec = 50
        gb = Decimal(size) / GB
        lines = [
            _line(
                f"retrieval ({tier}, {_gb(gb)} GB x ${_price(prices.retrieval_per_gb)}/GB)",
                gb * _dec(prices.retrieval_per_gb),
            ),
            _line(
                f"retrieval requests ({tier}, {_count(objects, 'object')} / 1,000 x ${_price(prices.requests_per_1000)} per 1,000)",
                Decimal(objects) / 1000 * _dec(prices.requests_per_1000),
            ),
            _line(
                f"temporary restored copy at STANDARD ({_gb(gb)} GB x ${_price(standard.storage_per_gb_month)}/GB-month"
                f" x {_count(days, 'day')} / {DAYS_PER_MONTH})",
                gb * _dec(standard.storage_per_gb_month) * days / DAYS_PER_MONTH,
            ),
        ]
        if transfer:
            out_gb = Decimal(transfer) / GB
            lines.append(
                _line(
                    f"data transfer out to the internet ({_gb(out_gb)} GB x ${_price(pricing.transfer_out_per_gb)}/GB;"
                    f" the first {_num(pricing.transfer_out_free_gb_per_month)} GB/month free allowance is not applied)",
                    out_gb * _dec(pricing.transfer_out_per_gb),
                )
            )
    return Estimate(tuple(lines))


def estimate_archive(
    pricing: Pricing,
    *,
    storage_class: str,
    size_bytes: int,
    objects: int,
    months: float = 1.0,
) -> Estimate:
    """What putting ``objects`` objects totalling ``size_bytes`` into a class and keeping them ``months`` costs.

    Lines: storage at the class rate x months (GLACIER_IR: if the average object size,
    ``size_bytes / objects``, is below the 128 KB minimum, every object is billed as 128 KB);
    for GLACIER and DEEP_ARCHIVE the per-object overhead, ``objects x 8 KB`` at STANDARD's rate
    and ``objects x 32 KB`` at the class rate, x months; PUT (or lifecycle transition) requests
    per 1,000; and, when ``months x 30`` days is shorter than the class's minimum storage
    duration, the charge for the remaining days (billed whether the objects are deleted early or
    kept), on the billable data size, not on the overhead.
    """
    cls = pricing.storage_class(storage_class)
    size = _non_negative_int(size_bytes, "size_bytes")
    objects = _positive_int(objects, "objects")
    if isinstance(months, bool) or not isinstance(months, (int, float)) or not math.isfinite(months) or months < 0:
        raise PricingError(f"months must be a finite number >= 0, not {months!r}")
    standard = pricing.storage_class("STANDARD")
    name = cls.storage_class

    with localcontext() as ctx:
        ctx.prec = 50
        m = _dec(months)
        rate = _dec(cls.storage_per_gb_month)
        billable = _billable_bytes(cls, size, objects)
        gb = Decimal(billable) / GB
        if billable > size:
            what = (
                f"{_count(objects, 'object')} averaging {_num(size / objects / KB)} KB, below the"
                f" {_num(cls.min_billable_object_bytes / KB)} KB minimum, billed as {objects:,} x"
                f" {_num(cls.min_billable_object_bytes / KB)} KB = {_gb(gb)} GB"
            )
        else:
            what = f"{_gb(gb)} GB"
        lines = [
            _line(
                f"storage at {name} ({what} x ${_price(cls.storage_per_gb_month)}/GB-month x {_count(months, 'month')})",
                gb * rate * m,
            )
        ]
        if cls.overhead_standard_bytes:
            over_gb = Decimal(objects * cls.overhead_standard_bytes) / GB
            lines.append(
                _line(
                    f"per-object overhead at STANDARD ({_count(objects, 'object')} x {_num(cls.overhead_standard_bytes / KB)} KB"
                    f" = {_gb(over_gb)} GB x ${_price(standard.storage_per_gb_month)}/GB-month x {_count(months, 'month')})",
                    over_gb * _dec(standard.storage_per_gb_month) * m,
                )
            )
        if cls.overhead_class_bytes:
            over_gb = Decimal(objects * cls.overhead_class_bytes) / GB
            lines.append(
                _line(
                    f"per-object overhead at {name} ({_count(objects, 'object')} x {_num(cls.overhead_class_bytes / KB)} KB"
                    f" = {_gb(over_gb)} GB x ${_price(cls.storage_per_gb_month)}/GB-month x {_count(months, 'month')})",
                    over_gb * rate * m,
                )
            )
        lines.append(
            _line(
                f"PUT/transition requests into {name} ({_count(objects, 'object')} / 1,000 x ${_price(cls.put_per_1000)} per 1,000)",
                Decimal(objects) / 1000 * _dec(cls.put_per_1000),
            )
        )
        stored_days = m * DAYS_PER_MONTH
        if stored_days < cls.min_storage_days:
            remaining = cls.min_storage_days - stored_days
            lines.append(
                _line(
                    f"minimum storage duration of {name} is {cls.min_storage_days} days: the remaining"
                    f" {_num(remaining)} days after {_num(stored_days)} days are billed, as an early-deletion charge"
                    f" if the objects are deleted ({_gb(gb)} GB x ${_price(cls.storage_per_gb_month)}/GB-month"
                    f" x {_num(remaining)} days / {DAYS_PER_MONTH})",
                    _early_deletion(cls, billable, stored_days),
                )
            )
    return Estimate(tuple(lines))


def get_per_1000(pricing: Pricing, storage_class: str) -> float:
    """GET/HEAD request price of a class (``get_per_1000`` in the price list; 0 if the list predates it)."""
    name = pricing.storage_class(storage_class).storage_class
    value = pricing.raw.get("classes", {}).get(name, {}).get("get_per_1000", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PricingError(f"classes.{name}.get_per_1000 must be a non-negative number, not {value!r}")
    return float(value)


def estimate_move(
    pricing: Pricing,
    *,
    storage_class: str,
    size_bytes: int,
    objects: int,
    copy_requests: int | None = None,
    head_requests: int | None = None,
    streamed_bytes: int = 0,
    source_class: str = "STANDARD",
    source_days_stored: float | None = None,
) -> Estimate:
    """What moving ``objects`` objects totalling ``size_bytes`` into ``storage_class`` by server-side copies costs.

    Lines: the copy requests, billed as PUT/COPY requests into the target class per 1,000
    (``copy_requests``: one CopyObject per object by default; a multipart copy is one
    CreateMultipartUpload, one UploadPartCopy per part and one CompleteMultipartUpload); the
    HEAD requests (and one GET per object when ``streamed_bytes`` > 0) at the source class's
    GET price; reading ``streamed_bytes`` back when the source class charges retrieval
    (GLACIER_IR); for GLACIER and DEEP_ARCHIVE the per-object overhead for one month (8 KB at
    STANDARD's rate and 32 KB at the class rate per object); the target class's minimum storage
    duration, billed in full whether the objects stay or are deleted earlier; and, when the
    source class has a minimum duration that ``source_days_stored`` has not reached, the early
    deletion charge of the copies being replaced. No data transfer is billed: the bytes stay in S3.
    """
    cls = pricing.storage_class(storage_class)
    src = pricing.storage_class(source_class)
    size = _non_negative_int(size_bytes, "size_bytes")
    objects = _positive_int(objects, "objects")
    copies = objects if copy_requests is None else _positive_int(copy_requests, "copy_requests")
    heads = objects if head_requests is None else _non_negative_int(head_requests, "head_requests")
    streamed = _non_negative_int(streamed_bytes, "streamed_bytes")
    gets = heads + (objects if streamed else 0)
    standard = pricing.storage_class("STANDARD")
    name = cls.storage_class
    with localcontext() as ctx:
        ctx.prec = 50
        rate = _dec(cls.storage_per_gb_month)
        lines = [
            _line(
                f"copy requests into {name} ({_count(copies, 'request')} / 1,000 x ${_price(cls.put_per_1000)} per 1,000;"
                f" priced as PUT/COPY or lifecycle transitions)",
                Decimal(copies) / 1000 * _dec(cls.put_per_1000),
            ),
            _line(
                f"HEAD/GET requests on {src.storage_class} ({_count(gets, 'request')} / 1,000 x"
                f" ${_price(get_per_1000(pricing, src.storage_class))} per 1,000)",
                Decimal(gets) / 1000 * _dec(get_per_1000(pricing, src.storage_class)),
            ),
        ]
        if streamed and src.retrieval_per_gb:
            gb_read = Decimal(streamed) / GB
            lines.append(_line(f"retrieval of the streamed bytes from {src.storage_class} ({_gb(gb_read)} GB x"
                               f" ${_price(src.retrieval_per_gb)}/GB)", gb_read * _dec(src.retrieval_per_gb)))
        if cls.overhead_standard_bytes or cls.overhead_class_bytes:
            std_gb = Decimal(objects * cls.overhead_standard_bytes) / GB
            cls_gb = Decimal(objects * cls.overhead_class_bytes) / GB
            lines.append(
                _line(
                    f"per-object overhead, per month ({_count(objects, 'object')} x"
                    f" ({_num(cls.overhead_standard_bytes / KB)} KB at STANDARD ${_price(standard.storage_per_gb_month)}/GB-month +"
                    f" {_num(cls.overhead_class_bytes / KB)} KB at {name} ${_price(cls.storage_per_gb_month)}/GB-month))",
                    std_gb * _dec(standard.storage_per_gb_month) + cls_gb * rate,
                )
            )
        if cls.min_storage_days:
            billable = _billable_bytes(cls, size, objects)
            gb = Decimal(billable) / GB
            lines.append(
                _line(
                    f"minimum storage duration of {name}: {cls.min_storage_days} days are billed even if the objects are"
                    f" deleted or moved sooner ({_gb(gb)} GB x ${_price(cls.storage_per_gb_month)}/GB-month"
                    f" x {cls.min_storage_days} days / {DAYS_PER_MONTH})",
                    gb * rate * cls.min_storage_days / DAYS_PER_MONTH,
                )
            )
        if src.min_storage_days and src.storage_class != name:
            if source_days_stored is None:
                days = Decimal(0)
                known = "an unknown number of"
            else:
                if isinstance(source_days_stored, bool) or not isinstance(source_days_stored, (int, float)) \
                        or not math.isfinite(source_days_stored) or source_days_stored < 0:
                    raise PricingError(f"source_days_stored must be a finite number >= 0, not {source_days_stored!r}")
                days = _dec(source_days_stored)
                known = _num(source_days_stored)
            charge = _early_deletion(src, _billable_bytes(src, size, objects), days)
            if charge:
                lines.append(
                    _line(
                        f"early deletion of the {src.storage_class} copies after {known} days (minimum {src.min_storage_days} days;"
                        f" the remaining days are billed)",
                        charge,
                    )
                )
    return Estimate(tuple(lines))


def early_deletion_charge(pricing: Pricing, *, storage_class: str, size_bytes: int, days_stored: float) -> float:
    """The prorated charge for deleting ``size_bytes`` (billable bytes) from a class after ``days_stored`` days.

    ``GB x storage rate x (minimum days - days_stored) / 30``, or 0 once the minimum is reached.
    ``size_bytes`` is taken as billed: apply GLACIER_IR's 128 KB minimum per object first if it matters.
    """
    cls = pricing.storage_class(storage_class)
    size = _non_negative_int(size_bytes, "size_bytes")
    if (
        isinstance(days_stored, bool)
        or not isinstance(days_stored, (int, float))
        or not math.isfinite(days_stored)
        or days_stored < 0
    ):
        raise PricingError(f"days_stored must be a finite number >= 0, not {days_stored!r}")
    with localcontext() as ctx:
        ctx.prec = 50
        return float(_early_deletion(cls, size, _dec(days_stored)))


# -- helpers -------------------------------------------------------------------------------------


def _early_deletion(cls: ClassPricing, billable_bytes: int, days_stored: Decimal) -> Decimal:
    remaining = Decimal(cls.min_storage_days) - days_stored
    if remaining <= 0:
        return Decimal(0)
    return Decimal(billable_bytes) / GB * _dec(cls.storage_per_gb_month) * remaining / DAYS_PER_MONTH


def _billable_bytes(cls: ClassPricing, size: int, objects: int) -> int:
    """Bytes billed for the data: at least ``objects x minimum`` when the average object is below the minimum."""
    minimum = objects * cls.min_billable_object_bytes
    return max(size, minimum)


def _class_name(storage_class: str) -> str:
    if not isinstance(storage_class, str):
        raise PricingError(f"storage class must be a string, not {storage_class!r}")
    return storage_class.strip().upper()


def _restorable(pricing: Pricing, storage_class: str) -> ClassPricing:
    cls = pricing.storage_class(storage_class)
    if not cls.restore_required:
        raise PricingError(
            f"{cls.storage_class} objects can be read directly: no restore is needed"
            + (f" (reading costs ${_price(cls.retrieval_per_gb)}/GB retrieval)" if cls.retrieval_per_gb else "")
        )
    return cls


def _tier_name(cls: ClassPricing, tier: str) -> str:
    if not isinstance(tier, str):
        raise PricingError(f"tier must be a string, not {tier!r}")
    name = tier.strip().capitalize()
    if name not in cls.tiers:
        if name == "Expedited" and cls.storage_class == "DEEP_ARCHIVE":
            raise PricingError("Expedited retrieval is not available for DEEP_ARCHIVE; use Standard or Bulk")
        raise PricingError(
            f"unknown tier {tier!r} for {cls.storage_class}; available: {', '.join(cls.tiers)}"
        )
    return name


def _non_negative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PricingError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PricingError(f"{name} must be an integer >= 1, not {value!r}")
    return value


def _dec(value: float | int) -> Decimal:
    """The decimal the TOML spelled: repr() of a float is the shortest string that reads back as it."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _line(item: str, usd: Decimal) -> CostLine:
    return CostLine(item=item, usd=float(usd))


def _price(value: float) -> str:
    """A price as written in the price list: 0.0025 -> '0.0025', 10.0 -> '10.00', 0.0 -> '0'."""
    d = _dec(value)
    if d == 0:
        return "0"
    text = f"{d:f}"
    if "." in text:
        text = text.rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _gb(gb: Decimal) -> str:
    """GB with at least 2 and at most 6 decimals, thousands separated: 2.5 -> '2.50', 1/1024 -> '0.000977'."""
    if 0 < gb < Decimal("0.0000005"):
        return f"{float(gb):.3g}"
    text = f"{gb:,.6f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def _num(value: float | Decimal) -> str:
    """A count of days or months without float noise: 1.0 -> '1', 1.5 -> '1.5', 1/3 -> '0.333333'."""
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if d == d.to_integral_value():
        return f"{int(d):,}"
    return f"{float(d):.6g}"


def _count(value: float | int, unit: str) -> str:
    """'1 object', '2 objects', '1.5 months', '1,000,000 objects'."""
    text = _num(value)
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value
