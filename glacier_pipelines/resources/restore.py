"""Resources of the restore path: the event queue (SQS), the SMTP notifier, pricing."""

from typing import Any

import boto3
import dagster as dg
from botocore.config import Config

from glacier_pipelines.core import notify, pricing
from glacier_pipelines.flows.restore import RestoreSetup
from glacier_pipelines.resources.archive import ArchiveStoreResource, CatalogResource, pricing_or_none


def _value(v: Any) -> Any:
    return v.get_value() if isinstance(v, dg.EnvVar) else v


class RestoreResource(dg.ConfigurableResource):
    """Where restore-completed events arrive, how requesters are told, what prices apply."""

    events_queue_url: str = ""  # empty: poll x-amz-restore instead
    sqs_endpoint_url: str | None = None
    region_name: str = "us-east-1"
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
        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)
        return boto3.session.Session().client("sqs", endpoint_url=self.sqs_endpoint_url or None, region_name=self.region_name, config=config)

    def pricing(self) -> pricing.Pricing | None:
        return pricing_or_none(self.pricing_region)

    def smtp(self) -> notify.SmtpSettings | None:
        if not self.smtp_host:
            return None
        return notify.SmtpSettings(host=self.smtp_host, port=self.smtp_port, sender=self.smtp_sender, user=self.smtp_user or None,
                                   password=_value(self.smtp_password) or None, starttls=self.smtp_starttls)

    def setup(self, catalog: CatalogResource, store: ArchiveStoreResource) -> RestoreSetup:
        smtp = self.smtp()
        return RestoreSetup(
            catalog=catalog.get(), s3=store.client(), pricing=self.pricing(),
            send_email=(lambda message: notify.send(smtp, message)) if smtp else None,
            sender=self.smtp_sender, max_link_seconds=self.max_link_seconds,
        )
