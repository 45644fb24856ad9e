"""
A stricter Kubernetes API emulator on top of kmock 0.8 (KubernetesEmulator).

Fixes the kmock-0.8 gaps that matter for Kopf-based controllers:

* ``/api/v1/namespaces[/NAME[/status|finalize]]`` crashed with 500 in kmock's path parser.
* Request matching re-scanned ALL past requests on every new request (O(N) -> slow after ~1.5k).
* No metadata.uid / resourceVersion / creationTimestamp / generation; list RV was the constant '...'.
* Watches ignored ``resourceVersion`` (replayed all objects as ADDED on every (re)connect), no 410.
* labelSelector / fieldSelector were ignored in list & watch.
* Every PATCH emitted MODIFIED, even a no-op one; no status-subresource split.
* PUT (replace) answered 404; no optimistic concurrency (409 on stale resourceVersion).
* ``metadata.generateName`` unsupported (2nd create -> 409 with name=None).
* Lists had no kind/apiVersion.
* Lists ignored ``limit`` / ``continue`` (one response with every object): now paged as the API
  server pages a LIST from etcd, in key order (namespace, name), with an opaque continue token;
  later pages report the first page's resourceVersion, as a paged LIST does (no remainingItemCount).

Test helpers: ``preload()``, ``drop_watches(gone=...)``, ``compact()``, ``watch_count()``.

Added for tests/kube (the controller's end-to-end suite):

* ``writes``: a log of every write request (POST/PUT/PATCH/DELETE) with method, resource, namespace,
  name, subresource, time, the bearer token (tells controller instances apart: give each its own kubeconfig
  token) and the User-Agent; ``writes_by(token)`` filters it. Kept whole (not trimmed), so a test can
  show what the controller wrote, and that it wrote nothing else (no finalizers, annotations, progress).
* ``remove()``: delete an object silently (no watch-event), as if the delete happened while the
  watches were down.
* ``objects_of()``: every live object (resource, namespace, name, body), for whole-store assertions.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import copy
import datetime
import itertools
import json
import random
import re
import string
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import apps, dicts, enums, parsing, references, rendering

# --------------------------------------------------------------------------------------------
# 1. Path-parser fix for the core "namespaces" resource (kmock 0.8 raises ValueError -> HTTP 500).
#    rendering.Request._parse() calls `parsing.parse_path` via module attribute -> patchable.
# --------------------------------------------------------------------------------------------
_orig_parse_path = getattr(parsing.parse_path, '__wrapped_orig__', parsing.parse_path)


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip('/').split('/')
    if len(parts) >= 3 and parts[0] == 'api' and parts[2] == 'namespaces':
        if len(parts) in (3, 4) or (len(parts) == 5 and parts[4] in ('status', 'finalize')):
            return parsing.ParsedPath(
                group='', version=parts[1], plural='namespaces', namespace=None,
                name=parts[3] if len(parts) > 3 else None,
                subresource=parts[4] if len(parts) > 4 else None,
            )
    return _orig_parse_path(path)


_parse_path.__wrapped_orig__ = _orig_parse_path  # type: ignore[attr-defined]
parsing.parse_path = _parse_path

# --------------------------------------------------------------------------------------------
# 2. Resource declarations needed by Kopf's discovery (verbs list+watch are mandatory for Kopf!).
# --------------------------------------------------------------------------------------------
VERBS = {'create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'}
RESOURCES: dict[str, kmock.ResourceInfo] = {
    'networking.k8s.io/v1/ingresses': kmock.ResourceInfo(kind='Ingress', singular='ingress', namespaced=True, verbs=VERBS, subresources={'status'}),
    'networking.k8s.io/v1/ingressclasses': kmock.ResourceInfo(kind='IngressClass', singular='ingressclass', namespaced=False, verbs=VERBS),
    'v1/services': kmock.ResourceInfo(kind='Service', singular='service', namespaced=True, verbs=VERBS, subresources={'status'}),
    'v1/endpoints': kmock.ResourceInfo(kind='Endpoints', singular='endpoints', namespaced=True, verbs=VERBS),
    'v1/secrets': kmock.ResourceInfo(kind='Secret', singular='secret', namespaced=True, verbs=VERBS),
    'v1/events': kmock.ResourceInfo(kind='Event', singular='event', namespaced=True, verbs=VERBS),
    'v1/namespaces': kmock.ResourceInfo(kind='Namespace', singular='namespace', namespaced=False, verbs=VERBS - {'deletecollection'}, subresources={'status', 'finalize'}),
    'discovery.k8s.io/v1/endpointslices': kmock.ResourceInfo(kind='EndpointSlice', singular='endpointslice', namespaced=True, verbs=VERBS),
    'coordination.k8s.io/v1/leases': kmock.ResourceInfo(kind='Lease', singular='lease', namespaced=True, verbs=VERBS),
    'events.k8s.io/v1/events': kmock.ResourceInfo(kind='Event', singular='event', namespaced=True, verbs=VERBS),
}

_DROP = object()  # in-bus marker: end the watch-streams of this resource


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _get_path(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split('.'):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _split_selector(sel: str) -> list[str]:
    # split on commas that are not inside "(...)" (for "in (a,b)")
    return [p.strip() for p in re.split(r',(?![^()]*\))', sel) if p.strip()]


def match_labels(labels: Mapping[str, str], selector: str | None) -> bool:
    for req in _split_selector(selector or ''):
        if m := re.fullmatch(r'(\S+)\s+(in|notin)\s+\((.*)\)', req):
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(',')}
            if op == 'in' and labels.get(key) not in vals:
                return False
            if op == 'notin' and key in labels and labels[key] in vals:
                return False
        elif m := re.fullmatch(r'([^=!\s]+)\s*(==|=|!=)\s*(\S*)', req):
            key, op, val = m.groups()
            if op == '!=' and labels.get(key) == val:
                return False
            if op in ('=', '==') and labels.get(key) != val:
                return False
        elif req.startswith('!'):
            if req[1:] in labels:
                return False
        elif req not in labels:
            return False
    return True


def match_fields(obj: Mapping[str, Any], selector: str | None) -> bool:
    for req in _split_selector(selector or ''):
        m = re.fullmatch(r'([^=!\s]+)\s*(==|=|!=)\s*(\S*)', req)
        if not m:
            raise kmock.KubernetesError(status=400, reason='BadRequest', message=f'bad fieldSelector {req!r}')
        path, op, val = m.groups()
        actual = _get_path(obj, path)
        actual = '' if actual is None else str(actual)
        if (op == '!=') == (actual == val):
            return False
    return True


@attrs.define(kw_only=True)
class K8sEmulator(kmock.KubernetesEmulator):
    strip_status_on_create: bool = True   # as real k8s does for ingresses/services
    request_log_limit: int = 5000         # kmock keeps all requests (memory); trim the history
    event_log_limit: int = 10000          # per-resource watch-event log for resourceVersion replays

    _rv: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    _last_rv: int = attrs.field(default=0, init=False)
    _log: dict[Any, collections.deque] = attrs.field(factory=dict, init=False)
    _compacted: dict[Any, int] = attrs.field(factory=lambda: collections.defaultdict(int), init=False)
    _results: dict[Any, Any] = attrs.field(factory=dict, init=False)
    _live_watches: int = attrs.field(default=0, init=False)
    writes: list[dict[str, Any]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback['put'] << self._serve_replace   # PUT is not an "action" in kmock -> 404 otherwise
        for key, info in RESOURCES.items():
            self.resources[key] = info

    # ------------------------------------------------------------------ request dispatching
    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.method in (enums.method.POST, enums.method.PUT, enums.method.PATCH, enums.method.DELETE):
            auth = request.headers.get('Authorization') or ''
            res = request.resource
            self.writes.append({
                'method': str(request.method.value).upper(),
                'resource': (f'{res.group}/{res.version}/{res.plural}'.lstrip('/') if res is not None else None),
                'namespace': request.namespace, 'name': request.name, 'subresource': request.subresource,
                'token': auth.removeprefix('Bearer ').strip() or None,
                'agent': request.headers.get('User-Agent') or '', 'path': request.url.path, 'time': time.time(),
            })
        if len(self._requests) > self.request_log_limit:
            del self._requests[:len(self._requests) - self.request_log_limit // 2]
        if request.resource is not None and request.resource.plural is not None:
            is_put = request.method == enums.method.PUT and request.name is not None
            if request.action in (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE) or is_put:
                async with self._lock:
                    self._results[request] = await self._mutate(request)
        try:
            return await self._dispatch(request)
        finally:
            self._results.pop(request, None)

    async def _dispatch(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        # Same as kmock's RawHandler._handle(), but the "does this reaction see the request" check
        # runs against a 1-request history instead of ALL past requests (which was O(N) per request).
        # Consequence: request-count slices in reactions (kmock[...][:3] << ...) are not supported.
        priorities = [p.priorities for p in self._payloads]
        width = max((len(p) for p in priorities), default=0)
        keys = [tuple(-x for x in p) + (0,) * (width - len(p)) for p in priorities]
        payloads = [self._payloads[i] for i in sorted(range(len(keys)), key=lambda i: keys[i])]
        saved, self._requests = self._requests, [request]
        try:
            candidates = [p for p in payloads if not p._disabled.is_set() and request in p._source]
        finally:
            self._requests = saved
        for payload in candidates:
            try:
                return await payload(request)
            except rendering.ReactionMismatchError:
                payload._disabled.set()
            except NotImplementedError:
                pass
        raise NotImplementedError('No reaction matches the request.')

    # ------------------------------------------------------------------ state changes
    def _info(self, resource: references.resource) -> kmock.ResourceInfo:
        return self._resources[resource]  # auto-creates an empty info if undeclared

    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _stamp_new(self, resource: references.resource, body: dict[str, Any]) -> None:
        info = self._info(resource)
        meta = body.setdefault('metadata', {})
        body.setdefault('apiVersion', f'{resource.group}/{resource.version}' if resource.group else resource.version)
        if info.kind:
            body.setdefault('kind', info.kind)
        meta.setdefault('uid', str(uuid.uuid4()))
        meta.setdefault('creationTimestamp', _now())
        meta.setdefault('generation', 1)
        meta['resourceVersion'] = self._next_rv()

    def preload(self, resource: str, *objs: Mapping[str, Any]) -> None:
        """Put objects directly into the store: no HTTP request, no watch-event (fast; for setups)."""
        res = references.resource(resource)
        info = self._info(res)
        for obj in objs:
            body = copy.deepcopy(dict(obj))
            self._stamp_new(res, body)
            ns = body['metadata'].get('namespace') if info.namespaced is not False else None
            self._objects[res, ns, body['metadata']['name']] = body

    async def _emit(self, resource: references.resource, type_: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        event = {'type': type_, 'object': copy.deepcopy(new), 'old': old, 'rv': self._last_rv}
        log = self._log.setdefault(resource, collections.deque())
        log.append(event)
        while len(log) > self.event_log_limit:
            self._compacted[resource] = log.popleft()['rv']
        await self._buses[resource].put(event)

    async def _mutate(self, request: rendering.Request) -> Any:
        res = request.resource
        info = self._info(res)
        has_status = 'status' in info.subresources
        sub = request.subresource
        if sub not in (None, 'status'):
            raise kmock.KubernetesNotFoundError(message=f'subresource {sub!r} is not emulated')
        if sub == 'status' and not has_status:
            raise kmock.KubernetesNotFoundError(message=f'{res.plural} has no status subresource')

        if request.action == enums.action.CREATE:
            body = copy.deepcopy(request.data or {})
            meta = body.setdefault('metadata', {})
            ns = (request.namespace or meta.get('namespace')) if info.namespaced is not False else None
            if ns:
                meta['namespace'] = ns
            if not meta.get('name') and meta.get('generateName'):
                meta['name'] = meta['generateName'] + ''.join(random.choices(string.ascii_lowercase + string.digits, k=5))
            if not meta.get('name'):
                raise kmock.KubernetesError(status=422, reason='Invalid', message='metadata.name or generateName is required')
            key = (res, ns, meta['name'])
            if key in self._objects and not self._objects[key].deleted:
                raise kmock.KubernetesError(status=409, reason='AlreadyExists', message=f'{meta["name"]!r} already exists')
            if has_status and self.strip_status_on_create:
                body.pop('status', None)
            for k in ('uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'generation'):
                meta.pop(k, None)
            self._stamp_new(res, body)
            if key in self._objects:
                self._objects[key].history.append(body)
            else:
                self._objects[key] = body
            await self._emit(res, 'ADDED', body, None)
            return body

        ns = request.namespace if info.namespaced is not False else None
        key = (res, ns, request.name)
        if key not in self._objects or self._objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        obj = self._objects[key]
        old = copy.deepcopy(obj.raw)

        if request.action == enums.action.DELETE:
            if old['metadata'].get('deletionTimestamp'):
                return old
            if old['metadata'].get('finalizers'):
                new = copy.deepcopy(old)
                new['metadata']['deletionTimestamp'] = _now()
                new['metadata']['resourceVersion'] = self._next_rv()
                obj.history.append(new)
                await self._emit(res, 'MODIFIED', new, old)
                return new
            old['metadata']['resourceVersion'] = self._next_rv()
            obj.delete()
            await self._emit(res, 'DELETED', old, old)
            return old

        # PATCH (merge / strategic-as-merge / json-patch) or PUT (replace).
        data = request.data
        if request.method == enums.method.PUT:
            if not isinstance(data, Mapping):
                raise kmock.KubernetesError(status=400, reason='BadRequest', message='PUT needs an object')
            new = copy.deepcopy(dict(data))
        elif isinstance(data, list):
            try:
                new = jsonpatch.apply_patch(old, data, in_place=False)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise kmock.KubernetesError(status=422, reason='Invalid', message=str(e))
        elif isinstance(data, Mapping):
            try:
                new = dict(dicts.merge_patch_dict(old, data))
            except ValueError as e:
                raise kmock.KubernetesError(status=422, reason='Invalid', message=str(e))
            new = copy.deepcopy(new)
        else:
            raise kmock.KubernetesError(status=400, reason='BadRequest', message='unsupported patch body')

        # Optimistic concurrency: a resourceVersion in the request body must match the current one.
        sent_rv = (data.get('metadata') or {}).get('resourceVersion') if isinstance(data, Mapping) else None
        if sent_rv is not None and str(sent_rv) != old['metadata']['resourceVersion']:
            raise kmock.KubernetesError(status=409, reason='Conflict',
                                        message='the object has been modified; please apply your changes to the latest version and try again')

        # Status-subresource split: /status changes only .status; the main endpoint never changes .status.
        if has_status and sub == 'status':
            status = new.get('status')
            new = copy.deepcopy(old)
            if status is None:
                new.pop('status', None)
            else:
                new['status'] = status
        elif has_status:
            if 'status' in old:
                new['status'] = copy.deepcopy(old['status'])
            else:
                new.pop('status', None)

        # Server-owned fields cannot be changed by clients.
        new.setdefault('metadata', {})
        for k in ('uid', 'creationTimestamp', 'resourceVersion', 'generation', 'name', 'namespace', 'deletionTimestamp'):
            if k in old['metadata']:
                new['metadata'][k] = old['metadata'][k]
            else:
                new['metadata'].pop(k, None)
        new.setdefault('apiVersion', old.get('apiVersion'))
        new.setdefault('kind', old.get('kind'))
        if new == old:
            return old  # no-op: no new resourceVersion, no watch-event (as in real k8s)
        if new.get('spec') != old.get('spec'):
            new['metadata']['generation'] = old['metadata'].get('generation', 1) + 1
        new['metadata']['resourceVersion'] = self._next_rv()
        obj.history.append(new)
        if new['metadata'].get('deletionTimestamp') and not new['metadata'].get('finalizers'):
            obj.delete()
            await self._emit(res, 'DELETED', new, old)
        else:
            await self._emit(res, 'MODIFIED', new, old)
        return new

    async def _serve_create(self, request: rendering.Request) -> Any:
        return self._results[request]

    async def _serve_update(self, request: rendering.Request) -> Any:
        return self._results[request]

    async def _serve_delete(self, request: rendering.Request) -> Any:
        return self._results[request]

    async def _serve_replace(self, request: rendering.Request) -> Any:
        if request in self._results:
            return self._results[request]
        raise kmock.KubernetesEndpointNotFoundError()

    # ------------------------------------------------------------------ reading
    def _matches(self, request: rendering.Request, res: Any, ns: str | None, body: Mapping[str, Any]) -> bool:
        if res != request.resource:
            return False
        if request.namespace is not None and ns != request.namespace:
            return False
        if request.name is not None and body.get('metadata', {}).get('name') != request.name:
            return False
        labels = body.get('metadata', {}).get('labels') or {}
        return (match_labels(labels, request.params.get('labelSelector')) and
                match_fields(body, request.params.get('fieldSelector')))

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        # O(1) instead of kmock's scan over all objects of all resources (was ~1.5us/object/request).
        ns = request.namespace if self._info(request.resource).namespaced is not False else None
        key = (request.resource, ns, request.name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            return copy.deepcopy(self._objects[key].raw)

    def _check_known(self, request: rendering.Request) -> kmock.ResourceInfo:
        if request.resource not in self._resources and request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        return self._info(request.resource)

    async def _serve_list(self, request: rendering.Request) -> Any:
        info = self._check_known(request)
        limit_text = request.params.get('limit') or '0'
        if not limit_text.isdigit():
            raise kmock.KubernetesError(status=400, reason='BadRequest', message=f'bad limit {limit_text!r}')
        limit = int(limit_text)
        after: tuple[str, str] | None = None
        rv = None
        if request.params.get('continue'):
            try:
                token = json.loads(base64.urlsafe_b64decode(request.params['continue']))
                after, rv = (token['start'][0], token['start'][1]), token['rv']
            except (ValueError, KeyError, TypeError, IndexError):
                raise kmock.KubernetesError(status=400, reason='BadRequest', message='invalid continue token') from None
        async with self._lock:
            keyed = sorted(((ns or '', name), obj) for (res, ns, name), obj in self._objects.items()
                           if res == request.resource and (after is None or (ns or '', name) > after))
            rv = rv or str(self._last_rv)
            page, more = [], False
            for key, obj in keyed:
                if obj.deleted or not self._matches(request, request.resource, key[0] or None, obj.raw):
                    continue
                if limit and len(page) == limit:
                    more = True
                    break
                page.append((key, obj))
            items = [copy.deepcopy(obj.raw) for _, obj in page]
        metadata: dict[str, Any] = {'resourceVersion': rv, 'continue': ''}
        if more:
            start = list(page[-1][0])
            metadata['continue'] = base64.urlsafe_b64encode(json.dumps({'rv': rv, 'start': start}).encode()).decode()
        res = request.resource
        return {
            'apiVersion': f'{res.group}/{res.version}' if res.group else res.version,
            'kind': f'{info.kind or res.plural.capitalize()}List',
            'metadata': metadata,
            'items': items,
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        self._check_known(request)  # before the 1st chunk: errors become a normal 404, not an in-stream ERROR
        yield b''  # send the headers now (kmock's trick), even if no events follow
        res = request.resource
        since = request.params.get('resourceVersion') or ''
        initial: list[dict[str, Any]] = []
        async with self._lock:
            bus = self._buses[res]
            mark = await bus.mark()  # under the lock: no gap between the snapshot/replay and the live bus
            if since in ('', '0') or request.params.get('sendInitialEvents') == 'true':
                initial = [{'type': 'ADDED', 'object': copy.deepcopy(obj.raw)}
                           for (r, ns, _), obj in self._objects.items()
                           if not obj.deleted and self._matches(request, r, ns, obj.raw)]
                if request.params.get('sendInitialEvents') == 'true':
                    initial.append({'type': 'BOOKMARK', 'object': {'kind': '', 'apiVersion': '', 'metadata': {
                        'resourceVersion': str(self._last_rv), 'annotations': {'k8s.io/initial-events-end': 'true'}}}})
            elif not since.isdigit() or int(since) < self._compacted[res]:
                initial = [self._gone_event()]
                since = 'GONE'
            else:
                initial = [e for e in self._log.get(res, ()) if e['rv'] > int(since)]
                initial = [e for e in (self._translate(request, e) for e in initial) if e is not None]
        self._live_watches += 1
        try:
            for event in initial:
                yield event
            if since == 'GONE':
                return
            async for item in bus.stream(since=mark):
                if isinstance(item, tuple) and item and item[0] is _DROP:
                    if item[1]:
                        yield self._gone_event()
                    return
                event = self._translate(request, item)
                if event is not None:
                    yield event
        finally:
            self._live_watches -= 1
            await bus.unmark(mark)

    @staticmethod
    def _gone_event() -> dict[str, Any]:
        return {'type': 'ERROR', 'object': {'apiVersion': 'v1', 'kind': 'Status', 'metadata': {}, 'status': 'Failure',
                                            'reason': 'Expired', 'code': 410,
                                            'message': 'too old resource version'}}

    def _translate(self, request: rendering.Request, event: dict[str, Any]) -> dict[str, Any] | None:
        """Per-watcher view of an event, incl. selector enter/leave semantics (ADDED/DELETED)."""
        new, old = event['object'], event.get('old')
        meta = new.get('metadata', {})
        ns = meta.get('namespace')
        new_ok = self._matches(request, request.resource, ns, new)
        old_ok = old is not None and self._matches(request, request.resource, ns, old)
        type_ = event['type']
        if type_ == 'MODIFIED':
            type_ = 'MODIFIED' if (new_ok and old_ok) else 'ADDED' if new_ok else 'DELETED' if old_ok else None
        elif type_ == 'DELETED':
            type_ = 'DELETED' if (new_ok or old_ok) else None
        elif not new_ok:
            type_ = None
        return None if type_ is None else {'type': type_, 'object': new}

    # ------------------------------------------------------------------ test helpers
    async def drop_watches(self, resource: str | None = None, *, gone: bool = False) -> None:
        """End live watch-streams (all or of one resource). gone=True: send ERROR 410 first."""
        targets = [references.resource(resource)] if resource else list(self._buses)
        for res in targets:
            await self._buses[res].put((_DROP, gone))

    def compact(self, resource: str | None = None) -> None:
        """Forget the event history: watch (re)connections with older resourceVersions get 410."""
        targets = [references.resource(resource)] if resource else list(set(self._log) | set(self._buses))
        rv = int(self._next_rv())  # a fresh RV: lists return it, so re-lists can watch from it again
        for res in targets:
            self._log.pop(res, None)
            self._compacted[res] = rv

    @property
    def watch_count(self) -> int:
        return self._live_watches

    def writes_by(self, token: str) -> list[dict[str, Any]]:
        return [w for w in list(self.writes) if w['token'] == token]

    def remove(self, resource: str, namespace: str | None, name: str) -> bool:
        """Delete an object without a watch-event (a delete the watches never saw)."""
        key = (references.resource(resource), namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return False
        self._next_rv()
        self._objects[key].delete()
        return True

    def objects_of(self) -> list[tuple[str, str | None, str, dict[str, Any]]]:
        out = []
        for (res, ns, name), obj in list(self._objects.items()):
            if not obj.deleted:
                out.append((f'{res.group}/{res.version}/{res.plural}'.lstrip('/'), ns, name, copy.deepcopy(obj.raw)))
        return out

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (references.resource(resource), namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)
