"""Cost estimates: archiving, restoring, moving and deleting early, each as the list of its charges.

Every input of the arithmetic is written into the text of each :class:`CostLine`, so a person
can check the figure by hand. Conventions are in the package docstring (GB = 2^30 bytes,
a month = 30 days, first tiers only, no free allowance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from glacier_pipelines.core.constants import GiB, KiB
from glacier_pipelines.core.pricing.figures import count as _count
from glacier_pipelines.core.pricing.figures import dec as _dec
from glacier_pipelines.core.pricing.figures import gb as _gb
from glacier_pipelines.core.pricing.figures import num as _num
from glacier_pipelines.core.pricing.figures import price as _price
from glacier_pipelines.core.pricing.model import ClassPricing, Pricing, PricingError, get_per_1000, restorable, tier_name

GB = GiB  # AWS bills storage per GB = 2^30 bytes (a GiB); every "GB" here means that.
KB = KiB
DAYS_PER_MONTH = 30  # a storage month is 30 days when prorating days (see the package docstring)


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
    cls = restorable(pricing, storage_class)
    tier = tier_name(cls, tier)
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
            lines.append(
                _line(
                    f"retrieval of the streamed bytes from {src.storage_class} ({_gb(gb_read)} GB x ${_price(src.retrieval_per_gb)}/GB)",
                    gb_read * _dec(src.retrieval_per_gb),
                )
            )
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
                if (
                    isinstance(source_days_stored, bool)
                    or not isinstance(source_days_stored, (int, float))
                    or not math.isfinite(source_days_stored)
                    or source_days_stored < 0
                ):
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
    if isinstance(days_stored, bool) or not isinstance(days_stored, (int, float)) or not math.isfinite(days_stored) or days_stored < 0:
        raise PricingError(f"days_stored must be a finite number >= 0, not {days_stored!r}")
    with localcontext() as ctx:
        ctx.prec = 50
        return float(_early_deletion(cls, size, _dec(days_stored)))


def _early_deletion(cls: ClassPricing, billable_bytes: int, days_stored: Decimal) -> Decimal:
    remaining = Decimal(cls.min_storage_days) - days_stored
    if remaining <= 0:
        return Decimal(0)
    return Decimal(billable_bytes) / GB * _dec(cls.storage_per_gb_month) * remaining / DAYS_PER_MONTH


def _billable_bytes(cls: ClassPricing, size: int, objects: int) -> int:
    """Bytes billed for the data: at least ``objects x minimum`` when the average object is below the minimum."""
    minimum = objects * cls.min_billable_object_bytes
    return max(size, minimum)


def _non_negative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PricingError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PricingError(f"{name} must be an integer >= 1, not {value!r}")
    return value


def _line(item: str, usd: Decimal) -> CostLine:
    return CostLine(item=item, usd=float(usd))
