"""The resource instances of the code location and the CLI, configured from environment variables.

Every variable is validated by ``settings.load`` first. Values that may carry secrets (the catalog
URL, the AMQP URL, the SMTP password) and the AWS connection fields (region, endpoint URL,
profile) are passed as ``dg.EnvVar`` when set, so the UI shows the variable, not its value; the
rest are plain, validated values with documented defaults.
"""

import os
from typing import Any

import dagster as dg

from glacier_pipelines.core import transfer
from glacier_pipelines.core.staging import StagingArea
from glacier_pipelines.flows.planning import parse_concurrency
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, RequestTransportResource, SourcesResource
from glacier_pipelines.resources.restore import RestoreResource
from glacier_pipelines.resources.vault import VaultResource
from glacier_pipelines.settings import Settings, as_text, load


def _checked_tenant_runs(text: str) -> str:
    parse_concurrency(text)  # refused at load, naming the variable, not in the middle of a sensor tick
    return text or "1"


def _from_env(name: str, value: Any) -> Any:
    """``dg.EnvVar(name)`` when the process environment holds the validated ``value`` (so the UI shows the variable,
    and a run resolves it), else the value itself (unset: the default; or an explicit ``environ`` that differs)."""
    return dg.EnvVar(name) if value not in (None, "") and os.environ.get(name) == str(value) else value


def aws_connection(endpoint_var: str, endpoint: str | None, region_var: str, region: str) -> dict[str, Any]:
    """The dagster-aws connection fields, as Dagster users configure them: region, endpoint URL, profile (AWS_PROFILE)."""
    return {
        "endpoint_url": _from_env(endpoint_var, endpoint),
        "region_name": _from_env(region_var, region),
        "profile_name": _from_env("AWS_PROFILE", os.environ.get("AWS_PROFILE") or None),
    }


def resources_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The resource instances for ``defs``, from environment variables and their defaults.

    Every variable is validated first (``settings.load``): a bad value raises SettingsError at load,
    naming the variable and what it accepts, not in the middle of a run.
    """
    environ = dict(os.environ) if environ is None else environ
    m = load(environ)
    s = Settings.from_model(m)
    # Checks across variables, still at load time.
    transfer.UploadSettings(
        bucket=s.bucket,
        storage_class=s.storage_class,
        part_size=s.part_size,
        multipart_threshold=s.multipart_threshold,
        max_concurrency=s.upload_concurrency,
        sse=s.sse,
    )
    return {
        "restore": RestoreResource(
            **aws_connection("GLACIER_SQS_ENDPOINT_URL", m.sqs_endpoint_url, "GLACIER_S3_REGION", m.s3_region),
            events_queue_url=m.restore_events_queue_url or "",
            pricing_region=m.pricing_region,
            max_days=m.restore_max_days,
            max_link_seconds=m.download_link_max_seconds,
            smtp_host=m.smtp_host,
            smtp_port=m.smtp_port,
            smtp_sender=m.smtp_from,
            smtp_user=m.smtp_user,
            smtp_password=_from_env("GLACIER_SMTP_PASSWORD", m.smtp_password) if m.smtp_password else "",
            smtp_starttls=m.smtp_starttls,
        ),
        "vault": VaultResource(
            **aws_connection("GLACIER_VAULT_ENDPOINT_URL", m.vault_endpoint_url, "GLACIER_VAULT_REGION", m.vault_region),
            account_id=m.vault_account_id,
            tier=m.vault_tier,
            chunk_size_mb=m.vault_chunk_size_mb,
            daily_bytes=m.vault_daily_bytes,
            max_jobs_per_run=m.vault_max_jobs_per_run,
            expiry_margin_hours=m.vault_expiry_margin_hours,
            inventory_format=m.vault_inventory_format,
            names_csv_path=m.vault_names_csv,
            key_prefix=m.vault_key_prefix,
            concurrency=m.vault_concurrency,
            home=str(s.home),
        ),
        "catalog": CatalogResource(url=_from_env("GLACIER_CATALOG_URL", m.catalog_url) if m.catalog_url else s.catalog_url),
        "archive_store": ArchiveStoreResource(
            **aws_connection("GLACIER_S3_ENDPOINT_URL", m.s3_endpoint_url, "GLACIER_S3_REGION", m.s3_region),
            bucket=s.bucket,
            storage_class=s.storage_class,
            key_prefix=s.key_prefix,
            sse=s.sse,
            kms_key_id=s.kms_key_id,
            part_size_mb=m.part_size_mb,
            multipart_threshold_mb=m.multipart_threshold_mb,
            upload_concurrency=s.upload_concurrency,
            package_threshold_bytes=m.package_threshold_bytes,
            package_tenant_thresholds=as_text(m.package_tenant_thresholds),
            package_target_bytes=m.package_target_bytes,
            package_max_age_hours=m.package_max_age_hours,
            staging_url=StagingArea.from_setting(m.staging_url, s.staging_dir).root if m.staging_url else "",
            fetch_processes=m.fetch_processes,
            tenants_config=m.tenants_config,
            compact_deleted_share=m.compact_deleted_share,
            trash_grace_days=m.trash_grace_days,
        ),
        "sources": SourcesResource(roots=s.source_roots, allowed_networks=s.source_allowed_networks, read_timeout=s.source_timeout),
        "request_transport": RequestTransportResource(
            kind=s.request_transport,
            home=str(s.home),
            batch_size=s.batch_size,
            tenants=",".join(s.tenants),
            tenant_runs=_checked_tenant_runs(m.tenant_runs),
            amqp_url=_from_env("GLACIER_AMQP_URL", m.amqp_url) if m.amqp_url else "",
            request_queue=s.request_queue,
            response_exchange=s.response_exchange,
            response_routing_key=s.response_routing_key,
            dead_letter_queue=s.dead_letter_queue,
            restore_request_queue=m.restore_request_queue,
        ),
    }
