"""A small asyncio face on the official `kubernetes` client: raw JSON in and out, calls in threads.

The client's own configuration loading (in-cluster service account, else kubeconfig) is what
Kopf's `login_via_client` uses too, so both talk to the same API server with the same identity.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ingress_ctrl.sources.kube_flags import Resource

PAGE = 500  # objects per LIST request


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def load_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def resource_path(resource: Resource, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    plural = resource.plural.split("/")[0]
    parts = [prefix, *(["namespaces", namespace] if namespace else []), plural, *([name] if name else []), *([subresource] if subresource else [])]
    return "/".join(parts)


class KubeApi:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self._client = api_client or load_client()

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                      query: list[tuple[str, str]] | None = None) -> Any:
        return await asyncio.to_thread(self._request, method, path, body, content_type, query or [])

    def _request(self, method: str, path: str, body: Any, content_type: str, query: list[tuple[str, str]]) -> Any:
        method, url, headers, body, post = self._client.param_serialize(
            method, path, query_params=query, body=body,
            header_params={"Accept": "application/json", "Content-Type": content_type}, auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(method, url, headers, body, post, _request_timeout=30)
            response.read()
        except ApiException as error:
            raise ApiError(error.status or 0, str(error.reason or error.body)[:500]) from None
        if not 200 <= response.status < 300:
            raise ApiError(response.status, (response.data or b"").decode(errors="replace")[:500])
        return json.loads(response.data) if response.data else None

    async def get(self, path: str) -> Any | None:
        try:
            return await self.request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def pages(self, resource: Resource, namespace: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """Every object of `resource` (in `namespace`, or everywhere), with kind and apiVersion set,
        a page (≤ PAGE objects) at a time: the caller keeps what it needs of one page before the
        next is fetched, so a LIST of 10,000 objects is never held whole."""
        query: list[tuple[str, str]] = [("limit", str(PAGE))]
        api_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        while True:
            page = await self.request("GET", resource_path(resource, namespace), query=query)
            token = (page.get("metadata") or {}).get("continue")
            yield [{"apiVersion": api_version, "kind": resource.kind, **item} for item in page.get("items") or []]
            if not token:
                return
            query = [("limit", str(PAGE)), ("continue", token)]

    async def merge_patch(self, path: str, patch: Any) -> Any:
        return await self.request("PATCH", path, patch, content_type="application/merge-patch+json")
