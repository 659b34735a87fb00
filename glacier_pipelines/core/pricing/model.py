"""The price list: its file as a pydantic model, and the immutable prices the estimates read.

``glacier_pipelines/data/pricing/<region>.toml`` is validated by :class:`PriceListFile`: every
class of :data:`PRICED_CLASSES` with its billing rules, every restore tier its class accepts
(``TIERS_BY_CLASS``) and no other, amounts finite and >= 0, counts whole and >= 0. A file that
fails names itself, each bad field and what the field accepts, all problems at once.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, create_model

from glacier_pipelines.core import validation
from glacier_pipelines.core.constants import STORAGE_CLASSES, TIERS_BY_CLASS
from glacier_pipelines.core.pricing.figures import price

# The price list's order (warmest first), which its tables and messages follow.
PRICED_CLASSES = tuple(reversed(STORAGE_CLASSES))
_PACKAGE = "glacier_pipelines.data.pricing"
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")


class PricingError(ValueError):
    """A price list that cannot be loaded, or a cost question the model refuses; the message says why."""


# -- the file ------------------------------------------------------------------------------------

Amount = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]  # USD, GB or hours: a finite number >= 0
Count = Annotated[int, Field(strict=True, ge=0)]  # days or bytes: a whole number >= 0


class _Table(BaseModel):
    # Keys the model does not read (notes, future prices) are left alone, as before; only tier sets are closed.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TierFile(_Table):
    """``[classes.<CLASS>.tiers.<Tier>]``: restore prices and the documented delay of one retrieval tier."""

    retrieval_per_gb: Amount
    requests_per_1000: Amount
    max_restore_hours: Amount


class ClassFile(_Table):
    """``[classes.<CLASS>]``: prices and billing rules of one storage class."""

    storage_per_gb_month: Amount
    put_per_1000: Amount
    min_storage_days: Count
    min_billable_object_bytes: Count
    overhead_standard_bytes: Count
    overhead_class_bytes: Count
    restore_required: StrictBool
    retrieval_per_gb: Amount
    get_per_1000: Amount = 0.0  # GET/HEAD requests; lists older than it price them at 0


def _class_file(name: str) -> type[ClassFile]:
    """The table of one class: a restore class has exactly its tiers (TIERS_BY_CLASS), the others none."""
    tiers = TIERS_BY_CLASS.get(name, ())
    restore = Annotated[bool, Field(strict=True), AfterValidator(functools.partial(_restore_required, name, bool(tiers)))]
    fields: dict[str, Any] = {"restore_required": (restore, ...)}
    if tiers:
        tier_fields: dict[str, Any] = {tier: (TierFile, ...) for tier in tiers}
        fields["tiers"] = (create_model(f"{name}TiersFile", __config__=ConfigDict(extra="forbid", frozen=True), **tier_fields), ...)
    else:
        fields["tiers"] = (Annotated[dict[str, Any], AfterValidator(functools.partial(_no_tiers, name))], {})
    return create_model(f"{name}ClassFile", __base__=ClassFile, **fields)


def _restore_required(name: str, expected: bool, value: bool) -> bool:
    if value != expected:
        raise ValueError(
            f"must be {str(expected).lower()} for {name}: its objects "
            + ("need a restore before reading" if expected else "are read directly")
        )
    return value


def _no_tiers(name: str, value: dict[str, Any]) -> dict[str, Any]:
    if value:
        raise ValueError(f"{name} has no restore tiers (its objects are read directly), not {', '.join(map(str, value))}")
    return value


_class_tables: dict[str, Any] = {name: (_class_file(name), ...) for name in PRICED_CLASSES}
ClassesFile = create_model("ClassesFile", __base__=_Table, **_class_tables)


class TransferFile(_Table):
    internet_per_gb: Amount
    free_gb_per_month: Amount


class PriceListFile(_Table):
    """One region's price list file."""

    version: Annotated[str, Field(strict=True, pattern=r"^\d{4}-\d{2}-\d{2}$")]
    region: StrictStr
    currency: Literal["USD"]  # the estimates format dollars
    transfer_out: TransferFile
    classes: ClassesFile  # type: ignore[valid-type]


_MESSAGES = {"string_pattern_mismatch": "must be a 'YYYY-MM-DD' date, not {input}"}


# -- the loaded prices -------------------------------------------------------------------------


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
    get_per_1000: float = 0.0


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
        name = class_name(storage_class)
        try:
            return self.classes[name]
        except KeyError:
            raise PricingError(
                f"unknown storage class {storage_class!r}; the {self.region} price list has: " + ", ".join(sorted(self.classes))
            ) from None


def available_regions() -> tuple[str, ...]:
    """Regions that have a price list in the package data."""
    return tuple(sorted(entry.name[: -len(".toml")] for entry in resources.files(_PACKAGE).iterdir() if entry.name.endswith(".toml")))


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
    """Validate a parsed price list (the TOML's structure) and build a :class:`Pricing` from it.

    :class:`PricingError` starts with ``source`` and lists every problem: ``field: what it accepts, not what it got``.
    """
    try:
        parsed = PriceListFile.model_validate(raw)
    except ValidationError as exc:
        found = validation.problems(exc, PriceListFile, _MESSAGES)
        raise PricingError(f"{source}: " + "; ".join(map(str, found))) from None
    classes = {}
    for name in PRICED_CLASSES:
        table = getattr(parsed.classes, name)
        tiers = {tier: TierPricing(tier=tier, **getattr(table.tiers, tier).model_dump()) for tier in tiers_for(name)}
        values = table.model_dump(include=set(ClassFile.model_fields) - {"tiers"})
        classes[name] = ClassPricing(storage_class=name, tiers=MappingProxyType(tiers), **values)
    return Pricing(
        version=parsed.version,
        region=parsed.region,
        currency=parsed.currency,
        classes=MappingProxyType(classes),
        transfer_out_per_gb=parsed.transfer_out.internet_per_gb,
        transfer_out_free_gb_per_month=parsed.transfer_out.free_gb_per_month,
        raw=_freeze(raw),
    )


# -- classes and tiers ---------------------------------------------------------------------------


def tiers_for(storage_class: str) -> tuple[str, ...]:
    """Restore tiers of a class, fastest first: GLACIER has three, DEEP_ARCHIVE two (no Expedited), the others none."""
    return tuple(reversed(TIERS_BY_CLASS.get(class_name(storage_class), ())))


def max_restore_hours(pricing: Pricing, storage_class: str, tier: str) -> float:
    """The documented "typically within" delay of a restore, in hours (5 minutes = 5/60)."""
    cls = restorable(pricing, storage_class)
    return cls.tiers[tier_name(cls, tier)].max_restore_hours


def get_per_1000(pricing: Pricing, storage_class: str) -> float:
    """GET/HEAD request price of a class (``get_per_1000`` in the price list; 0 if the list predates it)."""
    return pricing.storage_class(storage_class).get_per_1000


def class_name(storage_class: str) -> str:
    if not isinstance(storage_class, str):
        raise PricingError(f"storage class must be a string, not {storage_class!r}")
    return storage_class.strip().upper()


def restorable(pricing: Pricing, storage_class: str) -> ClassPricing:
    """The prices of a class that needs a restore before reading; :class:`PricingError` for the others."""
    cls = pricing.storage_class(storage_class)
    if not cls.restore_required:
        raise PricingError(
            f"{cls.storage_class} objects can be read directly: no restore is needed"
            + (f" (reading costs ${price(cls.retrieval_per_gb)}/GB retrieval)" if cls.retrieval_per_gb else "")
        )
    return cls


def tier_name(cls: ClassPricing, tier: str) -> str:
    """``tier`` as the price list spells it, if ``cls`` accepts it; :class:`PricingError` naming the ones it does otherwise."""
    if not isinstance(tier, str):
        raise PricingError(f"tier must be a string, not {tier!r}")
    name = tier.strip().capitalize()
    if name not in cls.tiers:
        if name == "Expedited" and cls.storage_class == "DEEP_ARCHIVE":
            raise PricingError("Expedited retrieval is not available for DEEP_ARCHIVE; use Standard or Bulk")
        raise PricingError(f"unknown tier {tier!r} for {cls.storage_class}; available: {', '.join(cls.tiers)}")
    return name


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value
