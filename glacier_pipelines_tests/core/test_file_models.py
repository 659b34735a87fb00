"""The pydantic models of the price list, the lifecycle file and the restore events: what their errors say.

Each refusal names the file (or message), the field, and what the field accepts; every problem
of a file is reported at once. Also: the split packages keep their public names, and sizes,
classes and tiers come from core/constants.py.
"""

from __future__ import annotations

import copy
import json
import tomllib
from importlib import resources

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from glacier_pipelines.core import constants, validation
from glacier_pipelines.core import lifecycle as lc
from glacier_pipelines.core.events import EventParseError, S3RestoreRecord, parse_restore_message
from glacier_pipelines.core.pricing import PRICED_CLASSES, PriceListFile, PricingError, parse_pricing, tiers_for


def _price_list() -> dict:
    return tomllib.loads(resources.files("glacier_pipelines.data.pricing").joinpath("us-east-1.toml").read_text(encoding="utf-8"))


def _refusal(mutate) -> str:
    raw = copy.deepcopy(_price_list())
    mutate(raw)
    with pytest.raises(PricingError) as info:
        parse_pricing(raw, source="us-east-1.toml")
    return str(info.value)


# -- the price list ---------------------------------------------------------------------------------


def test_a_price_list_refusal_names_the_file_the_field_and_the_range():
    message = _refusal(lambda r: r["classes"]["GLACIER"].update(storage_per_gb_month=-0.1))
    assert message == "us-east-1.toml: classes.GLACIER.storage_per_gb_month: must be at least 0, not -0.1"
    assert "classes.DEEP_ARCHIVE.min_storage_days: must be a whole number, not 1.5" in _refusal(
        lambda r: r["classes"]["DEEP_ARCHIVE"].update(min_storage_days=1.5)
    )
    assert "must be a finite number, not inf" in _refusal(lambda r: r["transfer_out"].update(internet_per_gb=float("inf")))
    assert "version: must be a 'YYYY-MM-DD' date, not 'June 2026'" in _refusal(lambda r: r.update(version="June 2026"))


def test_every_problem_of_a_price_list_is_reported_at_once():
    def breaks(raw):
        raw["currency"] = "EUR"
        del raw["classes"]["GLACIER_IR"]["put_per_1000"]
        raw["classes"]["STANDARD"]["get_per_1000"] = "free"

    message = _refusal(breaks)
    assert "currency: must be 'USD', not 'EUR'" in message
    assert "classes.GLACIER_IR.put_per_1000: is missing" in message
    assert "classes.STANDARD.get_per_1000: must be a number, not 'free'" in message


def test_restore_classes_have_exactly_their_tiers_and_the_others_none():
    assert "classes.DEEP_ARCHIVE.tiers: unknown field 'Expedited' (allowed: Bulk, Standard)" in _refusal(
        lambda r: r["classes"]["DEEP_ARCHIVE"]["tiers"].update(
            Expedited={"retrieval_per_gb": 1, "requests_per_1000": 1, "max_restore_hours": 1}
        )
    )
    assert "classes.GLACIER.tiers.Bulk: is missing" in _refusal(lambda r: r["classes"]["GLACIER"]["tiers"].pop("Bulk"))
    assert "classes.STANDARD.tiers: STANDARD has no restore tiers" in _refusal(
        lambda r: r["classes"]["STANDARD"].update(tiers={"Bulk": {}})
    )
    assert "classes.GLACIER.restore_required: must be true for GLACIER" in _refusal(
        lambda r: r["classes"]["GLACIER"].update(restore_required=False)
    )


def test_the_price_list_keeps_its_order_and_reads_get_prices_at_load():
    pricing = parse_pricing(_price_list())
    assert tuple(pricing.classes) == PRICED_CLASSES == ("STANDARD", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
    assert tuple(pricing.classes["GLACIER"].tiers) == tiers_for("GLACIER") == ("Expedited", "Standard", "Bulk")
    assert pricing.classes["GLACIER_IR"].get_per_1000 == 0.01
    raw = _price_list()
    del raw["classes"]["GLACIER"]["get_per_1000"]  # a list older than the GET prices prices them at 0
    assert parse_pricing(raw).classes["GLACIER"].get_per_1000 == 0.0
    assert PriceListFile.model_validate(_price_list()).currency == "USD"


# -- the lifecycle file -----------------------------------------------------------------------------


def _lifecycle_problems(document) -> list[str]:
    with pytest.raises(lc.LifecycleConfigError) as info:
        lc.parse_config(document, bucket="archive-test", key_prefix="archive", source="lifecycle.toml")
    assert str(info.value).startswith("lifecycle.toml: ")
    return info.value.problems


def test_lifecycle_problems_name_the_field_and_what_it_accepts():
    found = _lifecycle_problems(
        {
            "tenants": {
                "lab": {
                    "rules": [
                        {
                            "name": "x",
                            "transitions": [{"days": 10, "storage_class": "STANDARD_IA"}, {"storage_class": "glacier"}],
                            "enabled": "yes",
                        }
                    ],
                    "sources": ["s3://uploads/lab/", "https://example.org/x"],
                }
            },
            "extra": 1,
        }
    )
    assert found == [
        "top level: unknown field 'extra' (allowed: tenants)",
        "tenants.lab.rules[0].transitions[0].storage_class: 'STANDARD_IA' is not one of GLACIER_IR, GLACIER, DEEP_ARCHIVE",
        "tenants.lab.rules[0].transitions[1].days: is missing",
        "tenants.lab.rules[0].enabled: must be true or false, not 'yes'",
        "tenants.lab.sources[1]: 'https://example.org/x' is not an s3://bucket/prefix URL",
    ]


def test_lifecycle_waterfall_follows_the_constants():
    assert lc.WATERFALL == tuple(reversed(constants.TRANSITION_CLASSES)) == ("GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
    config = lc.parse_config(
        {
            "tenants": {
                "lab": {
                    "rules": [
                        {
                            "name": "r",
                            "transitions": [{"days": 200, "storage_class": "deep_archive"}, {"days": 10, "storage_class": "GLACIER"}],
                        }
                    ]
                }
            }
        },
        bucket="archive-test",
        key_prefix="archive",
    )
    assert [(t.days, t.storage_class) for t in config.rules()[0].transitions] == [(10, "GLACIER"), (200, "DEEP_ARCHIVE")]


# -- restore events -----------------------------------------------------------------------------------


def _record(**changes) -> dict:
    record = {
        "eventName": "ObjectRestore:Completed",
        "eventTime": "2024-05-02T10:15:30Z",
        "s3": {"bucket": {"name": "archive"}, "object": {"key": "a+b%2Fc", "versionId": ""}},
    }
    record.update(changes)
    return record


def test_a_restore_record_is_a_model_with_decoded_key_and_blank_version():
    record = S3RestoreRecord.model_validate(_record())
    assert record.s3.object_.key == "a b/c" and record.s3.object_.version_id is None


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            _record(s3={"bucket": {"name": "archive"}, "object": {"key": "k", "versionId": 7}}),
            "Records[0]: s3.object.versionId must be a non-empty string, got 7",
        ),
        (_record(s3={"bucket": {"name": "archive"}, "object": {"key": "\ud800"}}), "Records[0]: s3.object.key is not valid Unicode"),
        (
            _record(glacierEventData={"restoreEventData": {"lifecycleRestorationExpiryTime": 5}}),
            "Records[0]: glacierEventData.restoreEventData.lifecycleRestorationExpiryTime: must be a string, got 5",
        ),
    ],
)
def test_restore_record_refusals_name_the_field(record, expected):
    with pytest.raises(EventParseError) as info:
        parse_restore_message(json.dumps({"Records": [record]}))
    assert str(info.value).startswith(expected)


def test_every_problem_of_one_record_is_named():
    record = _record(eventTime="")
    del record["s3"]["bucket"]
    with pytest.raises(EventParseError) as info:
        parse_restore_message(json.dumps({"Records": [record]}))
    assert "missing s3.bucket" in str(info.value) and "eventTime must be a non-empty string" in str(info.value)


# -- the shared error wording ---------------------------------------------------------------------------


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(strict=True, ge=1)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[_Inner] = []
    named: dict[str, _Inner | None] = {}


def test_validation_problems_are_paths_and_sentences():
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate({"items": [{"days": 0}, {"day": 3}], "named": {"a": {"days": "2"}}})
    found = validation.problems(info.value, _Outer, {"int_type": "must be a whole number of days, not {input}"})
    assert [str(p) for p in found] == [
        "items[0].days: must be at least 1, not 0",
        "items[1].days: is missing",
        "items[1]: unknown field 'day' (allowed: days)",
        "named.a.days: must be a whole number of days, not '2'",
    ]
    assert validation.allowed_fields(_Outer, ("named", "a")) == {"days"}
    assert validation.shown("x" * 200).endswith("...") and len(validation.shown("x" * 200)) == 80


# -- split packages and constants ---------------------------------------------------------------------


def test_split_packages_keep_their_public_names():
    from glacier_pipelines.core import errors, pricing, transfer

    for name in (
        "UploadSettings",
        "StageResult",
        "StoreError",
        "ChecksumMismatch",
        "stage_stream",
        "commit_stage",
        "discard_stage",
        "abort_upload",
        "abort_stale_uploads",
        "head_checksum",
        "same_checksum",
        "verify_stored",
        "read_ahead",
        "sync_staged",
        "limit_malloc_arenas",
        "HEAD_BYTES",
        "_BUFFERS",
        "_BufferPool",
    ):
        assert hasattr(transfer, name), name
    assert transfer.ChecksumMismatch is errors.ChecksumMismatch
    assert transfer.STORAGE_CLASSES is constants.STORAGE_CLASSES and transfer.ARCHIVE_CLASSES is constants.ARCHIVE_CLASSES
    for name in (
        "Pricing",
        "ClassPricing",
        "TierPricing",
        "PricingError",
        "CostLine",
        "Estimate",
        "GB",
        "KB",
        "DAYS_PER_MONTH",
        "load_pricing",
        "parse_pricing",
        "available_regions",
        "tiers_for",
        "max_restore_hours",
        "get_per_1000",
        "estimate_restore",
        "estimate_archive",
        "estimate_move",
        "early_deletion_charge",
    ):
        assert hasattr(pricing, name), name
    assert pricing.GB == constants.GiB and pricing.KB == constants.KiB


def test_restore_tiers_come_from_the_constants():
    from glacier_pipelines.core import restores

    assert restores.TIERS is constants.TIERS
    assert restores.needs_restore("GLACIER") and restores.needs_restore("DEEP_ARCHIVE") and not restores.needs_restore("GLACIER_IR")
    with pytest.raises(restores.RestoreRequestError, match="tier: tier must be one of Bulk, Standard, Expedited"):
        restores.parse_restore_request(
            {"tenant": "lab", "files": [{"requestId": "r"}], "days": 1, "tier": "Fast", "requester": "a@example.org"}
        )
