"""Client side of the deployed storefront: where its public entry points are, and an HTTP client.

Entry points on the local cloud (MiniStack's path-style addressing, no DNS needed):
- storefront:   http://127.0.0.1:8480/  (the CloudFront distribution's viewer endpoint, localcloud/cdn.py:
                pages from S3, the web tier's routes under /api/*)
- web ALB:      http://127.0.0.1:4566/_alb/<load balancer name>/...
- REST API:     http://127.0.0.1:4566/_aws/execute-api/<api id>/<stage>/...  (header x-api-key)
The API key value is read with `apigateway get-api-key --include-value`, as a client of the real
deployment would. Resources that tests observe (queues, tables, event source mappings) are found
by their construct path (`aws:cdk:path` metadata) in the synthesized assembly, then resolved to
physical ids through CloudFormation: no name is hard-coded.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud.deploy import stack_templates
from localcloud.settings import PREFIX, REGION, STAGE, Settings

_API_URL = re.compile(r"https://(?P<id>[a-z0-9]+)\.execute-api\.[^/]+/(?P<stage>[^/]+)/?")


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]  # names in lower case

    def json(self) -> Any:
        return self.body


class HttpClient:
    """Thread-safe JSON-over-HTTP client with an optional cookie session (one per browser)."""

    _pool = urllib3.PoolManager(maxsize=16, retries=False, timeout=urllib3.Timeout(connect=5, read=60))

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.cookies: dict[str, str] = {}
        self._lock = threading.Lock()

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Response:
        all_headers = {"Accept": "application/json", **self.headers, **(headers or {})}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            all_headers.setdefault("Content-Type", "application/json")
        with self._lock:
            if self.cookies:
                all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        url = self.base_url + path
        raw = self._pool.request(method, url, body=data, headers=self.sign(method, url, data, all_headers))
        for header in raw.headers.getlist("Set-Cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            with self._lock:
                for name, morsel in cookie.items():
                    self.cookies[name] = morsel.value
        text = raw.data.decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Response(raw.status, parsed, {k.lower(): v for k, v in raw.headers.items()})

    def sign(self, method: str, url: str, data: str | bytes | None, headers: dict[str, str]) -> dict[str, str]:
        return headers

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def delete(self, path: str, **kw) -> Response:
        return self.request("DELETE", path, **kw)


class SignedHttpClient(HttpClient):
    """The back office: every request signed with AWS Signature Version 4 (service execute-api), as the
    staff routes (AWS_IAM) require; no API key."""

    def __init__(self, base_url: str, credentials: Credentials, region: str) -> None:
        super().__init__(base_url)
        self.signer = SigV4Auth(credentials, "execute-api", region)

    def sign(self, method: str, url: str, data: str | bytes | None, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        self.signer.add_auth(request)
        return dict(request.headers.items())


@dataclass
class Deployed:
    """Physical ids of the deployed stacks' resources, looked up by construct path."""

    settings: Settings
    assembly: Path
    _paths: dict[str, tuple[str, str]] = field(default_factory=dict)  # cdk path -> (stack, logical id)
    _physical: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stack, template in stack_templates(self.assembly).items():
            for logical_id, resource in template.get("Resources", {}).items():
                path = resource.get("Metadata", {}).get("aws:cdk:path")
                if path:
                    self._paths[path] = (stack, logical_id)

    def stacks(self) -> list[str]:
        return sorted({stack for stack, _ in self._paths.values()})

    def locate(self, path: str) -> tuple[str, str]:
        """(stack name, logical id) of the resource at construct path `path` (without /Resource)."""
        key = next((p for p in (path, f"{path}/Resource") if p in self._paths), None)
        if key is None:
            raise KeyError(f"no resource at construct path {path!r}")
        return self._paths[key]

    def physical_id(self, path: str) -> str:
        """`path` is the construct path without the trailing /Resource, e.g. Messaging/FulfilmentQueue/Queue."""
        stack, logical_id = self.locate(path)
        if stack not in self._physical:
            cfn = self.settings.client("cloudformation")
            self._physical[stack] = {
                r["LogicalResourceId"]: r["PhysicalResourceId"]
                for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
                for r in page["StackResourceSummaries"]
            }
        return self._physical[stack][logical_id]

    def paths(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return sorted(p.removesuffix("/Resource") for p in self._paths if regex.search(p))

    def parameter(self, name: str) -> str:
        return self.settings.client("ssm").get_parameter(Name=f"{self.settings.discovery_prefix}/{name}")["Parameter"][
            "Value"
        ]


def local_api_url(settings: Settings, public_url: str) -> str:
    """https://<id>.execute-api.<region>.amazonaws.com/<stage>/ -> the emulator's path-style URL."""
    match = _API_URL.match(public_url)
    if not match:
        raise ValueError(f"not an API Gateway URL: {public_url}")
    return f"{settings.endpoint}/_aws/execute-api/{match['id']}/{match['stage']}"


def api_client(settings: Settings, deployed: Deployed) -> HttpClient:
    apigw = settings.client("apigateway")
    cfn = settings.client("cloudformation")
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=f"{PREFIX}-{STAGE}-api")["Stacks"][0].get("Outputs", [])
    }
    key = apigw.get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    return HttpClient(local_api_url(settings, deployed.parameter("api-url")), headers={"x-api-key": key})


def api_outputs(settings: Settings) -> dict[str, str]:
    stack = settings.client("cloudformation").describe_stacks(StackName=f"{PREFIX}-{STAGE}-api")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def back_office_client(settings: Settings, deployed: Deployed) -> SignedHttpClient:
    """An operator: assumes the back-office role (the API stack's BackOfficeRoleArn) and signs with its
    temporary credentials."""
    role_arn = api_outputs(settings)["BackOfficeRoleArn"]
    issued = settings.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="back-office")["Credentials"]
    credentials = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
    return SignedHttpClient(local_api_url(settings, deployed.parameter("api-url")), credentials, REGION)


def storefront_client(settings: Settings) -> HttpClient:
    """A browser on the storefront's address (the CloudFront distribution's viewer endpoint): the web
    tier's routes under /api, same origin as the pages."""
    return HttpClient(f"{settings.storefront_url}api")


def check_storefront(settings: Settings) -> str:
    """The storefront's URL once its page and the catalogue answer through CloudFront; RuntimeError if not."""
    client = HttpClient(settings.storefront_url.rstrip("/"))
    page = client.get("/", headers={"Accept": "text/html"})
    if page.status != 200 or "<html" not in str(page.body):
        raise RuntimeError(f"GET {settings.storefront_url} answered {page.status}: {str(page.body)[:200]}")
    catalog = client.get("/api/catalog")
    if catalog.status != 200 or not (catalog.body or {}).get("products"):
        raise RuntimeError(f"GET {settings.storefront_url}api/catalog answered {catalog.status}: {catalog.body!r}")
    return f"{settings.storefront_url} (index.html from S3, {len(catalog.body['products'])} products from /api/catalog)"


def web_client(settings: Settings, load_balancer_name: str) -> HttpClient:
    """A browser: its own cookie jar, talking to the internet-facing ALB."""
    return HttpClient(f"{settings.endpoint}/_alb/{load_balancer_name}")


def idempotency_key() -> str:
    return str(uuid.uuid4())


def wait_for(check, timeout: float, what: str, interval: float = 0.25):
    """Poll `check()` until it returns a truthy value; return that value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
