"""catalog_objects_present: every object the catalog names for a tenant is in the bucket."""

import dagster as dg

from glacier_pipelines.flows.reconcile import ReconcileReport

CATALOG_OBJECTS_PRESENT = "catalog_objects_present"


def catalog_objects_present_spec(asset: str) -> dg.AssetCheckSpec:
    # Evaluated in the same step as the reconciliation, so the bucket is listed once per run.
    return dg.AssetCheckSpec(
        CATALOG_OBJECTS_PRESENT,
        asset=asset,
        description="Every object and package manifest the catalog names for the tenant exists in the bucket; "
        "fails naming the missing keys.",
    )


def catalog_objects_present(report: ReconcileReport) -> dg.AssetCheckResult:
    rows = "\n".join(f"| s3://{report.bucket}/{k} |" for k in report.missing[:200])
    more = f"\n\n…and {len(report.missing) - 200} more" if len(report.missing) > 200 else ""
    return dg.AssetCheckResult(
        check_name=CATALOG_OBJECTS_PRESENT,
        passed=not report.missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "catalog_keys": report.catalog_keys,
            "missing": len(report.missing),
            "missing_objects": dg.MetadataValue.md(
                f"| object named by the catalog, absent from S3 |\n|---|\n{rows}{more}"
                if report.missing
                else "Every catalog object is in the bucket."
            ),
        },
    )
