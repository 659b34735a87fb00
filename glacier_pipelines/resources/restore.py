"""Resources of the restore path: the event queue (SQS), the SMTP notifier, pricing."""

from typing import Any

import dagster as dg

from glacier_pipelines.core import notify, pricing
from glacier_pipelines.flows.restore import RestoreSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, pricing_or_none
from glacier_pipelines.resources.aws import AwsClientResource


def _value(v: Any) -> Any:
    return v.get_value() if isinstance(v, dg.EnvVar) else v


class RestoreResource(AwsClientResource):
    """Where restore-completed events arrive, how requesters are told, what prices apply.

    The AWS fields (dagster-aws' boto3 configuration: ``endpoint_url`` is GLACIER_SQS_ENDPOINT_URL,
    ``region_name`` GLACIER_S3_REGION) configure the SQS client; dagster-aws has no SQS resource.
    """

    events_queue_url: str = ""  # empty: poll x-amz-restore instead
    region_name: str | None = "us-east-1"
    read_timeout: float = 30
    pricing_region: str = "us-east-1"
    max_days: int = 365
    max_link_seconds: int = 7 * 24 * 3600
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "glacier-pipelines@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False

    def sqs(self) -> Any:
        """The SQS client of the restore events queue: botocore's standard retries (5 attempts), 10 s / 30 s timeouts."""
        return self.build_client("sqs")

    def pricing(self) -> pricing.Pricing | None:
        return pricing_or_none(self.pricing_region)

    def smtp(self) -> notify.SmtpSettings | None:
        if not self.smtp_host:
            return None
        return notify.SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_sender,
            user=self.smtp_user or None,
            password=_value(self.smtp_password) or None,
            starttls=self.smtp_starttls,
        )

    def setup(self, catalog: CatalogResource, store: ArchiveStoreResource) -> RestoreSetup:
        smtp = self.smtp()
        return RestoreSetup(
            catalog=catalog.get(),
            s3=store.client(),
            pricing=self.pricing(),
            send_email=(lambda message: notify.send(smtp, message)) if smtp else None,
            sender=self.smtp_sender,
            max_link_seconds=self.max_link_seconds,
        )
