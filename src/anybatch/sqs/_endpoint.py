"""Where a worker's SQS calls go: the queue URL's own host, unless it is AWS's.

A queue URL such as ``http://127.0.0.1:9324/123456789012/orders`` (ElasticMQ, LocalStack, moto)
names the endpoint that serves it; botocore would still call the region's AWS endpoint. As
the AWS SDK for JavaScript v3 does (``useQueueUrlAsEndpoint``), the worker calls the queue
URL's host when it is not an AWS host. An endpoint given explicitly (``endpoint_url=``,
``--endpoint-url``) or configured in the environment (``AWS_ENDPOINT_URL_SQS``,
``AWS_ENDPOINT_URL``) still wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["AWS_DOMAINS", "endpoint_of"]

#: The domains of AWS's own SQS endpoints, in every partition (the ``api.aws`` dual-stack
#: ones included); VPC endpoints (``vpce-...``) are under them too.
AWS_DOMAINS = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "api.aws",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
)

#: The environment variables botocore reads an SQS endpoint from.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL")


def endpoint_of(
    queue_url: str, endpoint_url: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The endpoint to give the SQS client: *endpoint_url*, else the queue URL's host.

    ``None`` (botocore's own choice: the environment's endpoint, or the region's) when the
    environment configures an endpoint, or when the queue URL is on an AWS domain.
    """
    if endpoint_url:
        return endpoint_url
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in ENDPOINT_VARIABLES):
        return None
    parts = urlsplit(queue_url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return None
    if any(host == domain or host.endswith("." + domain) for domain in AWS_DOMAINS):
        return None
    return f"{parts.scheme}://{parts.netloc}"
