"""Ad-platform customer lists: Meta Custom Audiences and Google Ads Customer Match.

Payload keys (both): ``email``, ``phone``, optional ``country`` (ISO region used to read a national
phone number; default ``default_country``, "KR"); Meta also takes ``first_name`` and ``last_name``.
Every value is normalised and SHA-256 hashed *here*, with ``activations.identifiers`` (the platform's
own recipe); raw values never leave the process. A row with neither a usable email nor a usable
phone is rejected ("no identifier after normalisation"). Names alone do not identify anyone.

Removals (mirror mode). The engine's removal rows carry only the primary key, so each destination
keeps a small hash store (SQLite at ``hash_store_path``; only hashes, never raw values): every
identifier set it successfully uploaded for a key. A removal sends those sets (and any identifiers
the removal payload itself carries); a removal for a key the store does not know is rejected, so a
lost store shows up instead of silently leaving people in the audience. A changed row adds its new
identifiers; the old ones are removed when the key leaves the audience.

Meta (Marketing API ``/{audience_id}/users``): ``POST`` adds, ``DELETE`` removes, body
``{"payload": {"schema": ["EMAIL", "PHONE", "FN", "LN"], "data": [[...], ...]}, "session": {...}}``
with at most 10,000 rows per request (``META_MAX_USERS_PER_REQUEST``). ``session`` tracks a
multi-request upload: ``session_id`` (one per run and per method), ``batch_seq`` (1, 2, ...) and
``last_batch_flag``. The engine does not say which batch is its last, so the flag is set on the
final request of a batch shorter than ``batch_size`` (the engine's tail); a full last batch leaves
the session open and Meta closes it by time-out; any request after a flagged one opens a new
session. Token: ``Authorization: Bearer`` from the env var named by ``access_token_env``.
Meta answers errors with HTTP 400 and ``error.code``: throttling codes (4, 17, 32, 613, 80003 ...)
become ``TransientError`` waiting ``estimated_time_to_regain_access`` (minutes, from the
``X-Business-Use-Case-Usage`` header); token errors (190, 2500 ...) stop the run (``HttpError``);
anything else refuses the batch (``BatchRejected``: the engine bisects), or rejects a single row.

Google (``OfflineUserDataJobService``, REST): a ``CUSTOMER_MATCH_USER_LIST`` job is created on the
first row of a run that needs it, operations are added with ``:addOperations`` (at most
``max_operations_per_request``, default 10,000 as Google advises; the hard limit is 100,000), with
``enablePartialFailure`` so a bad operation rejects only its row, and ``close_run`` runs the job
(``:run``). Google refuses a job that mixes ``create`` and ``remove`` operations
(``CONFLICTING_OPERATION``), so removals go to a second job. Headers: ``Authorization: Bearer``,
``developer-token``, optional ``login-customer-id``. Jobs are created lazily rather than in
``open_run`` so that a run with nothing to send leaves no empty job behind and so that creation is
retried by the engine like any request. Rows are acknowledged when their operations are in a job;
the list changes only once the job runs, so ``open_run`` first runs any job this destination left
PENDING (a run killed before ``close_run``), found by its ``externalId`` tag through
``googleAds:search``. ``close_run`` retries a transient failure to run a job a few times itself
(the engine does not retry its hooks) and raises if it still fails, naming the job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Callable

from activations.identifiers import (hash_email_google, hash_email_meta, hash_name_meta, hash_phone_google,
                                     hash_phone_meta)
from activations.sync.destination import BatchRejected, RowResult, SyncRow, TransientError

from .http import DeliveryMemo, HttpError, bearer, chunks, deliver_once, digest, env_secret, json_object, post_json

__all__ = [
    "MetaCustomAudienceDestination", "GoogleCustomerMatchDestination", "HashStore",
    "META_MAX_USERS_PER_REQUEST", "META_SCHEMA", "GOOGLE_MAX_OPERATIONS_PER_REQUEST",
    "GOOGLE_ADVISED_OPERATIONS_PER_REQUEST", "GOOGLE_MAX_IDENTIFIERS_PER_USER", "NO_IDENTIFIER",
]

log = logging.getLogger(__name__)

META_MAX_USERS_PER_REQUEST = 10_000
META_SCHEMA = ("EMAIL", "PHONE", "FN", "LN")
GOOGLE_MAX_OPERATIONS_PER_REQUEST = 100_000
GOOGLE_ADVISED_OPERATIONS_PER_REQUEST = 10_000
GOOGLE_MAX_IDENTIFIERS_PER_USER = 20
NO_IDENTIFIER = "no identifier after normalisation"
UNKNOWN_REMOVAL = "removal: no identifiers stored for this key (never uploaded through this destination)"

# Meta error codes: throttling (retry later) and access-token problems (stop the run).
META_THROTTLE_CODES = frozenset({4, 17, 32, 613, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008,
                                 80009, 80014})
META_AUTH_CODES = frozenset({102, 190, 2500})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_SETS_PER_KEY = 20


def _default_store(name: str) -> Path:
    return Path(os.environ.get("GOLDENTIME_STATE_DIR", ".goldentime")) / f"{name}-hashes.sqlite"


class HashStore:
    """Per key, the identifier *hash* sets uploaded (for removals); SQLite, one short transaction each."""

    def __init__(self, path: str | os.PathLike, scope: str):
        self.path = Path(path)
        self.scope = scope
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS uploaded_hashes (scope TEXT NOT NULL, key TEXT NOT NULL, "
                       "sets TEXT NOT NULL, PRIMARY KEY (scope, key))")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous = FULL")
        return db

    def get(self, key: str) -> list[dict]:
        with self._connect() as db:
            row = db.execute("SELECT sets FROM uploaded_hashes WHERE scope = ? AND key = ?",
                             [self.scope, key]).fetchone()
        return json.loads(row[0]) if row else []

    def add(self, entries: list[tuple[str, dict]]) -> None:
        if not entries:
            return
        with self._connect() as db:
            for key, ids in entries:
                row = db.execute("SELECT sets FROM uploaded_hashes WHERE scope = ? AND key = ?",
                                 [self.scope, key]).fetchone()
                sets = json.loads(row[0]) if row else []
                if ids not in sets:
                    sets = (sets + [ids])[-_MAX_SETS_PER_KEY:]
                db.execute("INSERT OR REPLACE INTO uploaded_hashes VALUES (?, ?, ?)",
                           [self.scope, key, json.dumps(sets, sort_keys=True)])

    def forget(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._connect() as db:
            db.executemany("DELETE FROM uploaded_hashes WHERE scope = ? AND key = ?",
                           [[self.scope, k] for k in keys])


def _removal_sets(row: SyncRow, from_payload: dict | None, store: HashStore) -> list[dict]:
    sets = list(store.get(row.key))
    if from_payload and from_payload not in sets:
        sets.append(from_payload)
    return sets


def _plan(rows: list[SyncRow], identifiers: Callable[[dict], dict | None], store: HashStore, remove: str,
          add: str) -> tuple[dict[int, RowResult], dict[str, list[tuple[int, dict]]]]:
    """(rows rejected up front, {remove: [(row index, id set)], add: [...]}): a removal sends every id
    set stored for its key (plus the payload's own); an addition its id set when it has one."""
    results: dict[int, RowResult] = {}
    work: dict[str, list[tuple[int, dict]]] = {remove: [], add: []}
    for i, row in enumerate(rows):
        ids = identifiers(row.payload)
        if row.operation == "remove":
            sets = _removal_sets(row, ids, store)
            if not sets:
                results[i] = RowResult(row.key, "rejected", UNKNOWN_REMOVAL)
            work[remove].extend((i, s) for s in sets)
        elif ids is None:
            results[i] = RowResult(row.key, "rejected", NO_IDENTIFIER)
        else:
            work[add].append((i, ids))
    return results, work


def _remember(store: HashStore, rows: list[SyncRow], results: dict[int, RowResult], uploaded) -> None:
    """Keep the id sets of the additions that went through; forget the keys removed."""
    store.add([(rows[i].key, ids) for i, ids in uploaded if results[i].status == "ok"])
    store.forget([row.key for i, row in enumerate(rows) if row.operation == "remove" and results[i].status == "ok"])


# --- Meta ---------------------------------------------------------------------------------------

class MetaCustomAudienceDestination:
    """Meta Custom Audience members (see the module docstring)."""

    def __init__(self, base_url: str, audience_id: str, access_token_env: str, name: str = "meta_custom_audience",
                 *, batch_size: int = META_MAX_USERS_PER_REQUEST,
                 max_users_per_request: int = META_MAX_USERS_PER_REQUEST,
                 max_requests_per_second: float | None = None, timeout: float = 60.0,
                 default_country: str = "KR", hash_store_path: str | os.PathLike | None = None):
        if not 1 <= max_users_per_request <= META_MAX_USERS_PER_REQUEST:
            raise ValueError(f"Meta takes at most {META_MAX_USERS_PER_REQUEST} users per request")
        self.base_url = base_url.rstrip("/")
        self.audience_id = str(audience_id)
        self.access_token_env = access_token_env
        self.name = name
        self.batch_size = batch_size
        self.max_users_per_request = max_users_per_request
        self.max_requests_per_second = max_requests_per_second
        self.timeout = timeout
        self.default_country = default_country
        self.store = HashStore(hash_store_path or _default_store(name), f"meta:{self.audience_id}")
        self.memo = DeliveryMemo()
        self._sessions: dict[str, dict] = {}

    # -- run hooks ----------------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        self.memo.clear()
        self._sessions = {}

    def close_run(self, run_id: str) -> None:
        self.memo.clear()
        self._sessions = {}

    # -- identifiers --------------------------------------------------------------------------
    def identifiers(self, payload: dict) -> dict | None:
        """{"EMAIL": hash, "PHONE": hash, "FN": hash, "LN": hash} (present keys only), or None."""
        country = payload.get("country") or self.default_country
        ids = {"EMAIL": hash_email_meta(payload.get("email")),
               "PHONE": hash_phone_meta(payload.get("phone"), country) if payload.get("phone") else None}
        if not (ids["EMAIL"] or ids["PHONE"]):
            return None
        ids["FN"] = hash_name_meta(payload.get("first_name"))
        ids["LN"] = hash_name_meta(payload.get("last_name"))
        return {k: v for k, v in ids.items() if v}

    @staticmethod
    def data_row(ids: dict) -> list[str]:
        return [ids.get(k, "") for k in META_SCHEMA]

    # -- sending ------------------------------------------------------------------------------
    def _session(self, method: str) -> dict:
        session = self._sessions.get(method)
        if session is None or session["closed"]:
            session = {"id": secrets.randbits(62) + 1, "seq": 0, "closed": False}
            self._sessions[method] = session
        return session

    def _request(self, method: str, data: list[list[str]], last: bool) -> dict:
        session = self._session(method)
        session["seq"] += 1
        body = {"payload": {"schema": list(META_SCHEMA), "data": data},
                "session": {"session_id": session["id"], "batch_seq": session["seq"], "last_batch_flag": last}}
        headers = {"Authorization": bearer(env_secret(self.access_token_env, "Meta access token"))}
        try:
            response = post_json(f"{self.base_url}/{self.audience_id}/users", body, headers,
                                 timeout=self.timeout, method=method, vendor="Meta")
        except TransientError:
            session["seq"] -= 1  # the same batch is retried under the same sequence number
            raise
        except HttpError as exc:
            session["seq"] -= 1
            error = (exc.response.json or {}).get("error", {}) if exc.response else {}
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            if code in META_THROTTLE_CODES:
                raise TransientError(str(exc), _meta_retry_after(exc.response.headers)) from None
            if exc.status in (401, 403) or code in META_AUTH_CODES:
                raise  # no row can succeed with this token: stop the run
            raise _MetaRefused(str(exc)) from None
        if last:
            session["closed"] = True
        return json_object(response)

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results, work = _plan(rows, self.identifiers, self.store, "DELETE", "POST")

        short_batch = len(rows) < self.batch_size
        failed: dict[int, str] = {}
        notes: list[str] = []
        for method in ("DELETE", "POST"):
            parts = list(chunks(work[method], self.max_users_per_request))
            for n, chunk in enumerate(parts):
                key = digest(method, [(rows[i].idempotency_key, s) for i, s in chunk])
                try:
                    answer = deliver_once(self.memo, key, lambda: self._request(
                        method, [self.data_row(s) for _, s in chunk], last=short_batch and n == len(parts) - 1))
                except _MetaRefused as exc:
                    if len({i for i, _ in chunk}) > 1:
                        raise BatchRejected(str(exc)) from None
                    failed[chunk[0][0]] = str(exc)
                    continue
                if answer.get("num_invalid_entries"):
                    notes.append(f"Meta: {answer['num_invalid_entries']} of {answer.get('num_received')} "
                                 "entries invalid in one request")

        note = "; ".join(notes)
        for i, row in enumerate(rows):
            if i in results:
                continue
            results[i] = RowResult(row.key, "rejected", failed[i]) if i in failed else RowResult(row.key, "ok", note)
        _remember(self.store, rows, results, work["POST"])
        return [results[i] for i in range(len(rows))]


class _MetaRefused(Exception):
    pass


def _meta_retry_after(headers) -> float | None:
    """Seconds from X-Business-Use-Case-Usage (estimated_time_to_regain_access, minutes) or Retry-After."""
    if not headers:
        return None
    raw = headers.get("X-Business-Use-Case-Usage")
    if raw:
        try:
            usage = json.loads(raw)
            minutes = [float(entry.get("estimated_time_to_regain_access") or 0)
                       for entries in usage.values() for entry in entries if isinstance(entry, dict)]
            if minutes and max(minutes) > 0:
                return max(minutes) * 60.0
        except (ValueError, AttributeError, TypeError):
            pass
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# --- Google -------------------------------------------------------------------------------------

class GoogleCustomerMatchDestination:
    """Google Ads Customer Match user list members (see the module docstring)."""

    def __init__(self, base_url: str, customer_id: str, user_list: str, developer_token_env: str,
                 access_token_env: str, name: str = "google_customer_match", *,
                 login_customer_id: str | None = None, batch_size: int = GOOGLE_ADVISED_OPERATIONS_PER_REQUEST,
                 max_operations_per_request: int = GOOGLE_ADVISED_OPERATIONS_PER_REQUEST,
                 max_requests_per_second: float | None = None, timeout: float = 60.0,
                 default_country: str = "KR", consent: dict | None = None,
                 hash_store_path: str | os.PathLike | None = None, run_attempts: int = 5,
                 sleep: Callable[[float], None] = time.sleep, recover_pending_jobs: bool = True):
        if not 1 <= max_operations_per_request <= GOOGLE_MAX_OPERATIONS_PER_REQUEST:
            raise ValueError(f"Google takes at most {GOOGLE_MAX_OPERATIONS_PER_REQUEST} operations per request")
        self.base_url = base_url.rstrip("/")
        self.customer_id = re.sub(r"\D", "", str(customer_id))
        user_list = str(user_list)
        self.user_list = user_list if user_list.startswith("customers/") else \
            f"customers/{self.customer_id}/userLists/{user_list}"
        self.developer_token_env = developer_token_env
        self.access_token_env = access_token_env
        self.name = name
        self.login_customer_id = re.sub(r"\D", "", str(login_customer_id)) if login_customer_id else None
        self.batch_size = batch_size
        self.max_operations_per_request = max_operations_per_request
        self.max_requests_per_second = max_requests_per_second
        self.timeout = timeout
        self.default_country = default_country
        self.consent = dict(consent) if consent else None
        self.store = HashStore(hash_store_path or _default_store(name), f"google:{self.user_list}")
        self.run_attempts = run_attempts
        self.sleep = sleep
        self.recover_pending_jobs = recover_pending_jobs
        # Tags our jobs, so that open_run finds (only) the ones this destination left pending.
        self.external_id = str(int(hashlib.sha256(f"{name}|{self.user_list}".encode()).hexdigest()[:15], 16))
        self.memo = DeliveryMemo()
        self.jobs: dict[str, str] = {}  # 'create' | 'remove' -> job resource name
        self.ran_jobs: list[tuple[str, str]] = []  # (job, long-running operation name) of the last close_run

    # -- http -----------------------------------------------------------------------------------
    def _headers(self) -> dict:
        headers = {"Authorization": bearer(env_secret(self.access_token_env, "Google OAuth access token")),
                   "developer-token": env_secret(self.developer_token_env, "Google Ads developer token")}
        if self.login_customer_id:
            headers["login-customer-id"] = self.login_customer_id
        return headers

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = post_json(f"{self.base_url}/{path}", body, self._headers(), timeout=self.timeout,
                                 vendor="Google Ads")
        except TransientError as exc:
            if exc.retry_after is None:
                hint = _google_retry_delay(exc)
                if hint is not None:
                    raise TransientError(str(exc), hint) from None
            raise
        except HttpError as exc:
            if exc.status in (401, 403):
                raise  # credentials / permissions: no row can succeed, stop the run
            raise _GoogleRefused(_google_message(exc)) from None
        return json_object(response)

    # -- jobs -----------------------------------------------------------------------------------
    def _job(self, kind: str) -> str:
        if kind not in self.jobs:
            metadata = {"userList": self.user_list}
            if self.consent:
                metadata["consent"] = self.consent
            try:
                answer = self._post(f"customers/{self.customer_id}/offlineUserDataJobs:create", {
                    "job": {"type": "CUSTOMER_MATCH_USER_LIST", "externalId": self.external_id,
                            "customerMatchUserListMetadata": metadata}})
            except _GoogleRefused as exc:  # wrong user list, terms not accepted...: no row can succeed
                raise RuntimeError(f"cannot create a Google offline user data job: {exc}") from None
            self.jobs[kind] = answer["resourceName"]
        return self.jobs[kind]

    def _run_job(self, job: str) -> str:
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._post(f"{job}:run", {})
                return str(answer.get("name", ""))
            except TransientError as exc:
                if attempt >= self.run_attempts:
                    raise RuntimeError(f"could not run Google offline user data job {job}: {exc}") from None
                self.sleep(exc.retry_after if exc.retry_after is not None else min(60.0, 2.0 ** (attempt - 1)))
            except _GoogleRefused as exc:
                raise RuntimeError(f"Google refused to run offline user data job {job}: {exc}") from None

    def pending_jobs(self) -> list[str]:
        """Our jobs still PENDING (created, never run), via googleAds:search."""
        query = ("SELECT offline_user_data_job.resource_name, offline_user_data_job.external_id, "
                 "offline_user_data_job.status FROM offline_user_data_job "
                 "WHERE offline_user_data_job.status = 'PENDING' "
                 "AND offline_user_data_job.type = 'CUSTOMER_MATCH_USER_LIST'")
        answer = self._post(f"customers/{self.customer_id}/googleAds:search", {"query": query})
        jobs = []
        for result in answer.get("results") or []:
            job = (result or {}).get("offlineUserDataJob") or {}
            if str(job.get("externalId")) == self.external_id and job.get("status") == "PENDING":
                jobs.append(job["resourceName"])
        return jobs

    # -- run hooks ----------------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        self.memo.clear()
        self.jobs = {}
        self.ran_jobs = []
        if not self.recover_pending_jobs:
            return
        try:
            for job in self.pending_jobs():
                log.warning("running Google job %s left pending by an interrupted run", job)
                self.ran_jobs.append((job, self._run_job(job)))
        except (TransientError, _GoogleRefused, RuntimeError) as exc:  # best effort: next run tries again
            log.warning("could not recover pending Google jobs: %s", exc)

    def close_run(self, run_id: str) -> None:
        jobs, self.jobs = self.jobs, {}
        self.memo.clear()
        for kind in ("remove", "create"):
            if kind in jobs:
                self.ran_jobs.append((jobs[kind], self._run_job(jobs[kind])))

    # -- identifiers --------------------------------------------------------------------------
    def identifiers(self, payload: dict) -> dict | None:
        """{"hashedEmail": hash, "hashedPhoneNumber": hash} (present keys only), or None."""
        country = payload.get("country") or self.default_country
        ids = {"hashedEmail": hash_email_google(payload.get("email")),
               "hashedPhoneNumber": hash_phone_google(payload.get("phone"), country) if payload.get("phone") else None}
        ids = {k: v for k, v in ids.items() if v}
        return ids or None

    @staticmethod
    def user_data(ids: dict) -> dict:
        return {"userIdentifiers": [{k: ids[k]} for k in ("hashedEmail", "hashedPhoneNumber") if k in ids]}

    # -- sending ------------------------------------------------------------------------------
    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results, work = _plan(rows, self.identifiers, self.store, "remove", "create")

        failed: dict[int, str] = {}
        for kind in ("remove", "create"):
            for chunk in chunks(work[kind], self.max_operations_per_request):
                key = digest(kind, [(rows[i].idempotency_key, s) for i, s in chunk])
                try:
                    answer = deliver_once(self.memo, key, lambda: self._add_operations(kind, chunk))
                except _GoogleRefused as exc:
                    if len({i for i, _ in chunk}) > 1:
                        raise BatchRejected(str(exc)) from None
                    failed[chunk[0][0]] = str(exc)
                    continue
                for index, message in _partial_failures(answer).items():
                    if 0 <= index < len(chunk):
                        i = chunk[index][0]
                        failed[i] = f"{failed[i]}; {message}" if i in failed else message

        for i, row in enumerate(rows):
            if i not in results:
                results[i] = RowResult(row.key, "rejected", failed[i]) if i in failed else RowResult(row.key, "ok")
        _remember(self.store, rows, results, work["create"])
        return [results[i] for i in range(len(rows))]

    def _add_operations(self, kind: str, chunk) -> dict:
        body = {"operations": [{kind: self.user_data(s)} for _, s in chunk], "enablePartialFailure": True}
        return self._post(f"{self._job(kind)}:addOperations", body)


class _GoogleRefused(Exception):
    pass


def _google_errors(data) -> list[dict]:
    errors = []
    if isinstance(data, dict):
        for detail in data.get("details") or []:
            if isinstance(detail, dict):
                errors.extend(e for e in detail.get("errors") or [] if isinstance(e, dict))
    return errors


def _describe(error: dict) -> str:
    code = error.get("errorCode") or {}
    codes = ", ".join(f"{k}={v}" for k, v in code.items()) if isinstance(code, dict) else str(code)
    return f"{codes}: {error.get('message', '')}".strip(": ")


def _google_message(exc: HttpError) -> str:
    data = exc.response.json if exc.response else None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return str(exc)
    details = "; ".join(_describe(e) for e in _google_errors(error)[:5])
    text = f"Google Ads HTTP {exc.status} {error.get('status', '')}: {error.get('message', '')}"
    return f"{text} [{details}]" if details else text


def _partial_failures(answer: dict) -> dict[int, str]:
    """operation index -> message, from AddOfflineUserDataJobOperationsResponse.partialFailureError."""
    out: dict[int, str] = {}
    for error in _google_errors(answer.get("partialFailureError")):
        path = ((error.get("location") or {}).get("fieldPathElements")) or []
        index = next((p.get("index") for p in path if p.get("fieldName") == "operations"), None)
        if isinstance(index, int):
            out[index] = f"{out[index]}; {_describe(error)}" if index in out else _describe(error)
    return out


def _google_retry_delay(exc: TransientError) -> float | None:
    """QuotaError retryDelay ("30s") from the error body, when the exception carries it."""
    response = getattr(exc, "response", None)
    text = response.text if response is not None else str(exc)
    match = re.search(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"', text or "")
    return float(match.group(1)) if match else None
