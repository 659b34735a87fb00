"""Tests for glacier_pipelines.core.pricing: the cost model against hand-computed figures.

Every expected figure below is written from the literal us-east-1 prices (restated in PRICES and
checked against the TOML by test_price_list_holds_the_figures_these_tests_use), never read back
from the model. GB = 2^30 bytes, KB = 1,024 bytes, a month = 30 days.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier_pipelines.core.pricing import (
    CostLine,
    Estimate,
    PricingError,
    available_regions,
    early_deletion_charge,
    estimate_archive,
    estimate_restore,
    load_pricing,
    max_restore_hours,
    parse_pricing,
    tiers_for,
)

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4

# The us-east-1 figures these tests are computed from (USD). If AWS changes a price, the TOML
# and this table change together, and the hand computations below are redone.
PRICES = {
    "STANDARD": {"storage_per_gb_month": 0.023, "put_per_1000": 0.005},
    "GLACIER_IR": {"storage_per_gb_month": 0.004, "put_per_1000": 0.02, "retrieval_per_gb": 0.03},
    "GLACIER": {"storage_per_gb_month": 0.0036, "put_per_1000": 0.03},
    "DEEP_ARCHIVE": {"storage_per_gb_month": 0.00099, "put_per_1000": 0.05},
}
TIER_PRICES = {
    ("GLACIER", "Expedited"): {"retrieval_per_gb": 0.03, "requests_per_1000": 10.0},
    ("GLACIER", "Standard"): {"retrieval_per_gb": 0.01, "requests_per_1000": 0.05},
    ("GLACIER", "Bulk"): {"retrieval_per_gb": 0.0, "requests_per_1000": 0.0},
    ("DEEP_ARCHIVE", "Standard"): {"retrieval_per_gb": 0.02, "requests_per_1000": 0.10},
    ("DEEP_ARCHIVE", "Bulk"): {"retrieval_per_gb": 0.0025, "requests_per_1000": 0.025},
}
TRANSFER_OUT_PER_GB = 0.09


@pytest.fixture(scope="module")
def pricing():
    return load_pricing("us-east-1")


def usd(estimate: Estimate) -> list[float]:
    return [line.usd for line in estimate.lines]


def items(estimate: Estimate) -> list[str]:
    return [line.item for line in estimate.lines]


# -- the price list ------------------------------------------------------------------------------


def _raw_toml() -> dict:
    text = resources.files("glacier_pipelines.data.pricing").joinpath("us-east-1.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_price_list_has_version_region_currency_and_cites_its_source():
    raw = _raw_toml()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw["version"])
    assert raw["region"] == "us-east-1"
    assert raw["currency"] == "USD"
    text = resources.files("glacier_pipelines.data.pricing").joinpath("us-east-1.toml").read_text(encoding="utf-8")
    assert "https://aws.amazon.com/s3/pricing/" in text


# The keys the model reads, listed here literally so that a TOML edit dropping one fails.
CLASS_KEYS = {
    "storage_per_gb_month",
    "put_per_1000",
    "min_storage_days",
    "min_billable_object_bytes",
    "overhead_standard_bytes",
    "overhead_class_bytes",
    "restore_required",
    "retrieval_per_gb",
}
TIER_KEYS = {"retrieval_per_gb", "requests_per_1000", "max_restore_hours"}


def test_every_class_and_tier_has_the_keys_the_model_reads():
    raw = _raw_toml()
    assert set(raw["transfer_out"]) >= {"internet_per_gb", "free_gb_per_month"}
    assert set(raw["classes"]) == {"STANDARD", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}
    for name, table in raw["classes"].items():
        missing = CLASS_KEYS - set(table)
        assert not missing, f"{name} lacks {missing}"
        for tier, tier_table in table.get("tiers", {}).items():
            missing = TIER_KEYS - set(tier_table)
            assert not missing, f"{name}.{tier} lacks {missing}"
    assert set(raw["classes"]["GLACIER"]["tiers"]) == {"Expedited", "Standard", "Bulk"}
    assert set(raw["classes"]["DEEP_ARCHIVE"]["tiers"]) == {"Standard", "Bulk"}
    assert "tiers" not in raw["classes"]["STANDARD"] and "tiers" not in raw["classes"]["GLACIER_IR"]


def test_price_list_holds_the_figures_these_tests_use():
    raw = _raw_toml()
    classes = raw["classes"]
    for name, prices in PRICES.items():
        for key, value in prices.items():
            assert classes[name][key] == value, f"{name}.{key}"
    for (name, tier), prices in TIER_PRICES.items():
        for key, value in prices.items():
            assert classes[name]["tiers"][tier][key] == value, f"{name}.{tier}.{key}"
    assert raw["transfer_out"]["internet_per_gb"] == TRANSFER_OUT_PER_GB
    assert raw["transfer_out"]["free_gb_per_month"] == 100
    assert [classes[c]["min_storage_days"] for c in ("STANDARD", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")] == [0, 90, 90, 180]
    assert classes["GLACIER_IR"]["min_billable_object_bytes"] == 128 * KiB
    for name in ("GLACIER", "DEEP_ARCHIVE"):
        assert classes[name]["overhead_standard_bytes"] == 8 * KiB
        assert classes[name]["overhead_class_bytes"] == 32 * KiB


@pytest.mark.parametrize(
    "path",
    [("version",), ("region",), ("currency",), ("transfer_out", "internet_per_gb"), ("transfer_out", "free_gb_per_month")]
    + [("classes", name, key) for name in PRICES for key in sorted(CLASS_KEYS)]
    + [("classes", name, "tiers", tier, key) for (name, tier) in TIER_PRICES for key in sorted(TIER_KEYS)],
)
def test_dropping_a_key_the_model_reads_is_refused(path):
    raw = copy.deepcopy(_raw_toml())
    table = raw
    for key in path[:-1]:
        table = table[key]
    del table[path[-1]]
    with pytest.raises(PricingError):
        parse_pricing(raw)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("classes", "GLACIER", "storage_per_gb_month"), -0.1),
        (("classes", "GLACIER", "storage_per_gb_month"), "cheap"),
        (("classes", "DEEP_ARCHIVE", "min_storage_days"), 1.5),
        (("version",), "June 2026"),
        (("currency",), "EUR"),
    ],
)
def test_bad_values_are_refused(path, value):
    raw = copy.deepcopy(_raw_toml())
    table = raw
    for key in path[:-1]:
        table = table[key]
    table[path[-1]] = value
    with pytest.raises(PricingError):
        parse_pricing(raw)


def test_an_expedited_tier_added_to_deep_archive_is_refused():
    raw = copy.deepcopy(_raw_toml())
    raw["classes"]["DEEP_ARCHIVE"]["tiers"]["Expedited"] = {"retrieval_per_gb": 1, "requests_per_1000": 1, "max_restore_hours": 1}
    with pytest.raises(PricingError):
        parse_pricing(raw)


def test_load_pricing(pricing):
    assert (pricing.version, pricing.region, pricing.currency) == (_raw_toml()["version"], "us-east-1", "USD")
    assert pricing.raw["classes"]["GLACIER"]["storage_per_gb_month"] == 0.0036
    assert load_pricing() is pricing  # cached
    assert "us-east-1" in available_regions()
    with pytest.raises(TypeError):
        pricing.raw["region"] = "elsewhere"  # read-only


@pytest.mark.parametrize("region", ["eu-west-9", "US-EAST-1", "../us-east-1", "", None])
def test_unknown_region_names_the_available_ones(region):
    with pytest.raises(PricingError, match=r"us-east-1"):
        load_pricing(region)


def test_module_does_not_import_dagster():
    code = "import sys, glacier_pipelines.core.pricing; assert 'dagster' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- tiers and delays ----------------------------------------------------------------------------


def test_tiers_for():
    assert tiers_for("GLACIER") == ("Expedited", "Standard", "Bulk")
    assert tiers_for("DEEP_ARCHIVE") == ("Standard", "Bulk")
    assert tiers_for("STANDARD") == ()
    assert tiers_for("GLACIER_IR") == ()


@pytest.mark.parametrize(
    ("storage_class", "tier", "hours"),
    [
        ("GLACIER", "Expedited", 5 / 60),  # 1-5 minutes
        ("GLACIER", "Standard", 5),  # 3-5 hours
        ("GLACIER", "Bulk", 12),  # 5-12 hours
        ("DEEP_ARCHIVE", "Standard", 12),  # within 12 hours
        ("DEEP_ARCHIVE", "Bulk", 48),  # within 48 hours
    ],
)
def test_max_restore_hours(pricing, storage_class, tier, hours):
    assert max_restore_hours(pricing, storage_class, tier) == pytest.approx(hours, abs=1e-12)


@pytest.mark.parametrize(
    ("storage_class", "tier", "message"),
    [
        ("DEEP_ARCHIVE", "Expedited", "not available for DEEP_ARCHIVE"),
        ("STANDARD", "Standard", "no restore is needed"),
        ("GLACIER_IR", "Bulk", "no restore is needed"),
        ("GLACIER", "Turbo", "unknown tier"),
        ("ONEZONE_IA", "Bulk", "unknown storage class"),
    ],
)
def test_max_restore_hours_refusals(pricing, storage_class, tier, message):
    with pytest.raises(PricingError, match=message):
        max_restore_hours(pricing, storage_class, tier)


# -- restore estimates: hand-computed ------------------------------------------------------------


def test_deep_archive_bulk_restore_of_100_gib_for_7_days(pricing):
    # retrieval      100 GB x $0.0025/GB                 = 0.25
    # requests       1 object / 1,000 x $0.025            = 0.000025
    # restored copy  100 GB x $0.023/GB-month x 7/30      = 0.536666...
    # transfer out   100 GB x $0.09/GB                    = 9.00
    # total                                               = 9.786691666... -> 9.786692
    estimate = estimate_restore(pricing, storage_class="DEEP_ARCHIVE", tier="Bulk", size_bytes=100 * GiB, days=7)
    expected = [100 * 0.0025, 1 / 1000 * 0.025, 100 * 0.023 * 7 / 30, 100 * 0.09]
    assert usd(estimate) == pytest.approx(expected, abs=1e-12)
    assert estimate.total == round(sum(expected), 6) == 9.786692
    assert items(estimate)[0] == "retrieval (Bulk, 100.00 GB x $0.0025/GB)"
    assert "1 object / 1,000 x $0.025 per 1,000" in items(estimate)[1]
    assert "100.00 GB x $0.023/GB-month x 7 days / 30" in items(estimate)[2]
    assert "100.00 GB x $0.09/GB" in items(estimate)[3] and "not applied" in items(estimate)[3]


def test_glacier_expedited_restore_of_1_gib_for_1_day_without_transfer(pricing):
    # retrieval      1 GB x $0.03/GB                      = 0.03
    # requests       1 / 1,000 x $10.00                   = 0.01
    # restored copy  1 GB x $0.023 x 1/30                 = 0.000766666...
    # transfer out   left out (transfer_out_bytes=0)
    # total                                               = 0.040766666... -> 0.040767
    estimate = estimate_restore(pricing, storage_class="GLACIER", tier="Expedited", size_bytes=GiB, days=1, transfer_out_bytes=0)
    expected = [1 * 0.03, 1 / 1000 * 10.00, 1 * 0.023 * 1 / 30]
    assert usd(estimate) == pytest.approx(expected, abs=1e-12)
    assert len(estimate.lines) == 3
    assert estimate.total == round(sum(expected), 6) == 0.040767
    assert "$10.00 per 1,000" in items(estimate)[1]


def test_glacier_standard_restore_of_10000_objects_of_1_mib_for_3_days(pricing):
    # size           10,000 x 1 MiB = 10,000 / 1,024 GB   = 9.765625 GB
    # retrieval      9.765625 x $0.01                     = 0.09765625
    # requests       10,000 / 1,000 x $0.05               = 0.50
    # restored copy  9.765625 x $0.023 x 3/30             = 0.0224609375
    # transfer out   9.765625 x $0.09                     = 0.87890625
    # total                                               = 1.4990234375 -> 1.499023
    gb = 10_000 / 1024
    estimate = estimate_restore(pricing, storage_class="GLACIER", tier="Standard", size_bytes=10_000 * MiB, days=3, objects=10_000)
    expected = [gb * 0.01, 10_000 / 1000 * 0.05, gb * 0.023 * 3 / 30, gb * 0.09]
    assert usd(estimate) == pytest.approx(expected, abs=1e-12)
    assert estimate.total == round(sum(expected), 6) == 1.499023
    assert items(estimate)[0] == "retrieval (Standard, 9.765625 GB x $0.01/GB)"
    assert "10,000 objects / 1,000 x $0.05 per 1,000" in items(estimate)[1]


def test_glacier_bulk_retrieval_is_free_but_the_restored_copy_is_not(pricing):
    # retrieval 50 x $0 = 0; requests 5 / 1,000 x $0 = 0; copy 50 x $0.023 x 2/30 = 0.076666... -> 0.076667
    estimate = estimate_restore(pricing, storage_class="GLACIER", tier="Bulk", size_bytes=50 * GiB, days=2, objects=5, transfer_out_bytes=0)
    assert usd(estimate) == pytest.approx([0.0, 0.0, 50 * 0.023 * 2 / 30], abs=1e-12)
    assert estimate.total == 0.076667


def test_transfer_out_can_differ_from_the_restored_size(pricing):
    # restore 10 GB from DEEP_ARCHIVE Standard for 1 day, download only 2 GB of it
    # retrieval 10 x 0.02 = 0.2; requests 1/1000 x 0.10 = 0.0001; copy 10 x 0.023 x 1/30; transfer 2 x 0.09 = 0.18
    estimate = estimate_restore(
        pricing, storage_class="DEEP_ARCHIVE", tier="Standard", size_bytes=10 * GiB, days=1, transfer_out_bytes=2 * GiB
    )
    expected = [10 * 0.02, 1 / 1000 * 0.10, 10 * 0.023 * 1 / 30, 2 * 0.09]
    assert usd(estimate) == pytest.approx(expected, abs=1e-12)
    assert estimate.total == round(sum(expected), 6)


def test_tier_and_class_names_are_case_insensitive(pricing):
    a = estimate_restore(pricing, storage_class="deep_archive", tier="bulk", size_bytes=GiB, days=1)
    b = estimate_restore(pricing, storage_class="DEEP_ARCHIVE", tier="Bulk", size_bytes=GiB, days=1)
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"storage_class": "DEEP_ARCHIVE", "tier": "Expedited"}, "Expedited retrieval is not available for DEEP_ARCHIVE"),
        ({"storage_class": "STANDARD", "tier": "Standard"}, "no restore is needed"),
        ({"storage_class": "GLACIER_IR", "tier": "Standard"}, "no restore is needed"),
        ({"storage_class": "REDUCED_REDUNDANCY", "tier": "Standard"}, "unknown storage class"),
        ({"storage_class": "GLACIER", "tier": "Fast"}, "unknown tier"),
        ({"storage_class": "GLACIER", "tier": "Bulk", "size_bytes": -1}, "size_bytes"),
        ({"storage_class": "GLACIER", "tier": "Bulk", "transfer_out_bytes": -1}, "transfer_out_bytes"),
        ({"storage_class": "GLACIER", "tier": "Bulk", "days": 0}, "days"),
        ({"storage_class": "GLACIER", "tier": "Bulk", "objects": 0}, "objects"),
        ({"storage_class": "GLACIER", "tier": "Bulk", "size_bytes": 1.5}, "size_bytes"),
    ],
)
def test_restore_refusals(pricing, kwargs, message):
    arguments = {"size_bytes": GiB, "days": 1} | kwargs
    with pytest.raises(PricingError, match=message):
        estimate_restore(pricing, **arguments)


def test_pricing_error_is_a_value_error():
    assert issubclass(PricingError, ValueError)


# -- archive estimates: hand-computed ------------------------------------------------------------


def test_deep_archive_1_tib_in_a_million_objects_for_1_month(pricing):
    # storage            1,024 GB x $0.00099 x 1 month                                   = 1.01376
    # overhead STANDARD  1,000,000 x 8 KB  = 7.62939453125 GB x $0.023 x 1               = 0.17547607421875
    # overhead DA        1,000,000 x 32 KB = 30.517578125 GB x $0.00099 x 1              = 0.03021240234375
    # PUT                1,000,000 / 1,000 x $0.05                                       = 50.00
    # early deletion     1,024 GB x $0.00099 x (180 - 30) days / 30                      = 5.0688
    # total                                                                              = 56.2882484765625 -> 56.288248
    estimate = estimate_archive(pricing, storage_class="DEEP_ARCHIVE", size_bytes=TiB, objects=1_000_000, months=1)
    expected = [
        1024 * 0.00099 * 1,
        1_000_000 * 8 * 1024 / 2**30 * 0.023 * 1,
        1_000_000 * 32 * 1024 / 2**30 * 0.00099 * 1,
        1_000_000 / 1000 * 0.05,
        1024 * 0.00099 * (180 - 30) / 30,
    ]
    assert usd(estimate) == pytest.approx(expected, abs=1e-12)
    assert estimate.total == round(sum(expected), 6) == 56.288248
    lines = items(estimate)
    assert lines[0] == "storage at DEEP_ARCHIVE (1,024.00 GB x $0.00099/GB-month x 1 month)"
    assert "1,000,000 objects x 8 KB = 7.629395 GB x $0.023/GB-month" in lines[1]
    assert "1,000,000 objects x 32 KB = 30.517578 GB x $0.00099/GB-month" in lines[2]
    assert "1,000,000 objects / 1,000 x $0.05 per 1,000" in lines[3]
    assert "180 days" in lines[4] and "remaining 150 days" in lines[4] and "early-deletion" in lines[4]


def test_glacier_ir_small_objects_are_billed_at_128_kb(pricing):
    # 1,000 objects of 10 KB: average 10 KB < 128 KB, so billed as 1,000 x 128 KB = 0.1220703125 GB
    # storage         0.1220703125 x $0.004 x 1.5 months          = 0.000732421875
    # PUT             1,000 / 1,000 x $0.02                        = 0.02
    # early deletion  0.1220703125 x $0.004 x (90 - 45) / 30       = 0.000732421875
    # total                                                        = 0.02146484375 -> 0.021465
    billed_gb = 1000 * 128 * 1024 / 2**30
    estimate = estimate_archive(pricing, storage_class="GLACIER_IR", size_bytes=1000 * 10 * KiB, objects=1000, months=1.5)
    expected = [billed_gb * 0.004 * 1.5, 1000 / 1000 * 0.02, billed_gb * 0.004 * (90 - 45) / 30]
    assert usd(estimate) == pytest.approx(expected, abs=1e-15)
    assert estimate.total == round(sum(expected), 6) == 0.021465
    assert "averaging 10 KB, below the 128 KB minimum, billed as 1,000 x 128 KB = 0.12207 GB" in items(estimate)[0]


def test_glacier_ir_large_objects_are_billed_at_their_size(pricing):
    # 2 GB in 10 objects (average 204.8 MB): no minimum applies; 3 months x 30 = 90 days, no early deletion
    estimate = estimate_archive(pricing, storage_class="GLACIER_IR", size_bytes=2 * GiB, objects=10, months=3)
    expected = [2 * 0.004 * 3, 10 / 1000 * 0.02]
    assert usd(estimate) == pytest.approx(expected, abs=1e-15)


def test_glacier_for_4_months_has_overhead_and_no_early_deletion(pricing):
    # storage       10 GB x $0.0036 x 4                                     = 0.144
    # overhead STD  100 x 8 KB  = 0.000762939453125 GB x $0.023 x 4         = 0.0000701904296875
    # overhead GL   100 x 32 KB = 0.0030517578125 GB x $0.0036 x 4          = 0.00004394531250
    # PUT           100 / 1,000 x $0.03                                     = 0.003
    # 4 x 30 = 120 days >= 90: no minimum-duration line
    estimate = estimate_archive(pricing, storage_class="GLACIER", size_bytes=10 * GiB, objects=100, months=4)
    expected = [
        10 * 0.0036 * 4,
        100 * 8 * 1024 / 2**30 * 0.023 * 4,
        100 * 32 * 1024 / 2**30 * 0.0036 * 4,
        100 / 1000 * 0.03,
    ]
    assert usd(estimate) == pytest.approx(expected, abs=1e-15)
    assert estimate.total == round(sum(expected), 6) == 0.147114
    assert not any("minimum storage duration" in item for item in items(estimate))


def test_standard_archive_has_no_overhead_and_no_minimum(pricing):
    # 1 GB x $0.023 x 1 + 1 / 1,000 x $0.005 = 0.023005
    estimate = estimate_archive(pricing, storage_class="STANDARD", size_bytes=GiB, objects=1)
    assert usd(estimate) == pytest.approx([1 * 0.023 * 1, 1 / 1000 * 0.005], abs=1e-15)
    assert estimate.total == 0.023005


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"storage_class": "DEEP_ARCHIVE", "size_bytes": -1}, "size_bytes"),
        ({"storage_class": "DEEP_ARCHIVE", "objects": 0}, "objects"),
        ({"storage_class": "DEEP_ARCHIVE", "months": -1}, "months"),
        ({"storage_class": "DEEP_ARCHIVE", "months": float("nan")}, "months"),
        ({"storage_class": "INTELLIGENT_TIERING"}, "unknown storage class"),
    ],
)
def test_archive_refusals(pricing, kwargs, message):
    arguments = {"size_bytes": GiB, "objects": 1} | kwargs
    with pytest.raises(PricingError, match=message):
        estimate_archive(pricing, **arguments)


# -- early deletion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage_class", "size_bytes", "days_stored", "expected"),
    [
        ("GLACIER", 10 * GiB, 30, 10 * 0.0036 * (90 - 30) / 30),  # 0.072
        ("GLACIER", 10 * GiB, 90, 0.0),
        ("GLACIER", 10 * GiB, 400, 0.0),
        ("DEEP_ARCHIVE", GiB, 0, 1 * 0.00099 * 180 / 30),  # 0.00594
        ("DEEP_ARCHIVE", GiB, 179.5, 1 * 0.00099 * 0.5 / 30),
        ("GLACIER_IR", 3 * GiB, 60, 3 * 0.004 * 30 / 30),  # 0.012
        ("STANDARD", 3 * GiB, 0, 0.0),
    ],
)
def test_early_deletion_charge(pricing, storage_class, size_bytes, days_stored, expected):
    charge = early_deletion_charge(pricing, storage_class=storage_class, size_bytes=size_bytes, days_stored=days_stored)
    assert charge == pytest.approx(expected, abs=1e-15)


def test_early_deletion_refusals(pricing):
    with pytest.raises(PricingError):
        early_deletion_charge(pricing, storage_class="GLACIER", size_bytes=-1, days_stored=1)
    with pytest.raises(PricingError):
        early_deletion_charge(pricing, storage_class="GLACIER", size_bytes=1, days_stored=-1)
    with pytest.raises(PricingError):
        early_deletion_charge(pricing, storage_class="NOPE", size_bytes=1, days_stored=1)


# -- the Estimate type ---------------------------------------------------------------------------


def test_estimate_total_and_as_dict():
    estimate = Estimate((CostLine("a", 0.1), CostLine("b", 0.2), CostLine("c", 0.0000004)))
    assert estimate.total == 0.3  # 0.3000004 rounded to 6 decimals, without float noise
    assert estimate.as_dict() == {
        "total": 0.3,
        "lines": [{"item": "a", "usd": 0.1}, {"item": "b", "usd": 0.2}, {"item": "c", "usd": 0.0000004}],
    }
    assert Estimate(()).total == 0.0
    assert Estimate((CostLine("half", 0.0000005),)).total == 0.000001  # half-up


# -- properties ----------------------------------------------------------------------------------

RESTORABLE = st.sampled_from(
    [("GLACIER", "Expedited"), ("GLACIER", "Standard"), ("GLACIER", "Bulk"), ("DEEP_ARCHIVE", "Standard"), ("DEEP_ARCHIVE", "Bulk")]
)
SIZES = st.integers(min_value=0, max_value=2**50)
CLASSES = st.sampled_from(["STANDARD", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"])


@settings(max_examples=150, deadline=None)
@given(
    RESTORABLE,
    SIZES,
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=1, max_value=3650),
    st.integers(min_value=0, max_value=3650),
    st.integers(min_value=1, max_value=10**7),
)
def test_restore_totals_are_non_negative_and_monotonic(class_tier, size, extra, days, more_days, objects):
    pricing = load_pricing()
    storage_class, tier = class_tier

    def total(size_bytes, d):
        estimate = estimate_restore(pricing, storage_class=storage_class, tier=tier, size_bytes=size_bytes, days=d, objects=objects)
        assert all(line.usd >= 0 for line in estimate.lines)
        return estimate.total

    base = total(size, days)
    assert base >= 0
    assert total(size + extra, days) >= base
    assert total(size, days + more_days) >= base


@settings(max_examples=150, deadline=None)
@given(
    CLASSES,
    SIZES,
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=1, max_value=10**7),
    st.floats(min_value=0, max_value=120, allow_nan=False),
    st.floats(min_value=0, max_value=120, allow_nan=False),
)
def test_archive_totals_are_non_negative_and_monotonic(storage_class, size, extra, objects, months, more_months):
    pricing = load_pricing()

    def total(size_bytes, m):
        estimate = estimate_archive(pricing, storage_class=storage_class, size_bytes=size_bytes, objects=objects, months=m)
        assert all(line.usd >= 0 for line in estimate.lines)
        return estimate.total

    base = total(size, months)
    assert base >= 0
    assert total(size + extra, months) >= base
    assert total(size, months + more_months) >= base
