"""Loopback stand-ins for Meta's Custom Audience API and Google Ads' OfflineUserDataJobService.

They enforce the vendors' documented contracts (see /work/shared/CONTRACTS.md, "Ad platforms") and
answer like the vendors do, so a destination that passes against them is shaped right:

Meta ``POST|DELETE /<version>/{audience_id}/users``
- access token (``Authorization: Bearer|OAuth`` or ``access_token``): missing -> 400 code 2500,
  wrong -> 400 code 190 (Graph API answers OAuth errors with HTTP 400 and ``error.code``);
- body ``{"payload": {"schema", "data"}, "session": {"session_id", "batch_seq", "last_batch_flag"}}``;
  schema keys from Meta's list; every row as long as the schema; every hashed value empty or a
  64-character lowercase hex SHA-256 (a raw value -> 400 code 100); at most ``limit`` rows
  (10,000) -> else 400 code 100;
- throttling like Meta: HTTP 400 code 80003 with ``X-Business-Use-Case-Usage`` giving
  ``estimated_time_to_regain_access`` in minutes;
- 200 ``{"audience_id", "session_id", "num_received", "num_invalid_entries", "invalid_entry_samples"}``.

Google ``/<version>/customers/{cid}/offlineUserDataJobs:create``, ``/{job}:addOperations``,
``/{job}:run``, ``/customers/{cid}/googleAds:search``
- ``Authorization: Bearer`` and ``developer-token`` headers -> else 401 UNAUTHENTICATED;
- job type CUSTOMER_MATCH_USER_LIST with ``customerMatchUserListMetadata.userList`` of this customer;
- operations: each exactly one of ``create`` / ``remove`` with ``userIdentifiers``; unknown JSON
  field names -> 400 INVALID_ARGUMENT ("Unknown name ..."), like the REST transcoder; a job never
  mixes create and remove (CONFLICTING_OPERATION); no operations after the job ran
  (JOB_ALREADY_STARTED); more than ``limit`` operations (100,000) or more than 20 identifiers in one
  operation -> TOO_MANY_USER_IDENTIFIERS; a hashed value that is not 64-char lowercase hex ->
  INVALID_SHA256_FORMAT: a 400 for the request, or, with ``enablePartialFailure``, a
  ``partialFailureError`` naming ``operations[i]`` while the other operations are applied;
- 429 RESOURCE_EXHAUSTED with ``quotaErrorDetails.retryDelay`` when told to throttle.
Membership is applied when a job runs (``members``), as Google does.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

try:
    from tests.contract_servers import LoopbackHTTPServer
except ModuleNotFoundError:  # `pytest` puts tests/ (not the project root) on sys.path
    from contract_servers import LoopbackHTTPServer

SHA256 = re.compile(r"^[0-9a-f]{64}$")
META_KEYS = {"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP",
             "MADID", "COUNTRY"}
META_UNHASHED = {"EXTERN_ID", "MADID"}
META_MATCH_KEYS = {"EMAIL", "PHONE", "EXTERN_ID", "MADID"}  # names alone identify no one
GOOGLE_IDENTIFIER_FIELDS = {"hashedEmail", "hashedPhoneNumber", "mobileId", "thirdPartyUserId", "addressInfo"}
GOOGLE_HASHED = {"hashedEmail", "hashedPhoneNumber"}


class LoopbackServer(LoopbackHTTPServer):
    """Loopback server recording every request (method, path, lower-cased headers, raw body)."""

    def __init__(self):
        super().__init__()
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.server = self.httpd

    def respond(self, method, path, headers, raw):
        headers = {k.lower(): v for k, v in headers.items()}
        self.requests.append((method, path, headers, raw))
        return self.handle(method, path, headers, raw)

    def handle(self, method, path, headers, body):  # pragma: no cover - overridden
        raise NotImplementedError

    def raw_traffic(self) -> bytes:
        return b"\n".join(path.encode() + b"\n" + json.dumps(h).encode() + b"\n" + body
                          for _, path, h, body in self.requests)


# --- Meta ---------------------------------------------------------------------------------------

def meta_error(message, code, subcode=None, status=400, headers=None):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGhIjK"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return status, {"error": error}, headers


class MetaServer(LoopbackServer):
    def __init__(self, audience_id="23850000000000001", token="meta-test-token", limit=10_000, throttle=0):
        super().__init__()
        self.audience_id = audience_id
        self.token = token
        self.limit = limit
        self.throttle = throttle  # answer the next N valid calls with the throttling error
        self.base_url = f"{self.origin}/v21.0"
        self.members: set[tuple] = set()  # one tuple of hashes per added row (schema order)
        self.calls: list[tuple] = []  # (method, status, rows, session)

    def handle(self, method, path, headers, body):
        parts = urlsplit(path)
        match = re.fullmatch(r"/v\d+\.\d+/(\d+)/users", parts.path)
        if not match or method not in ("POST", "DELETE"):
            return meta_error("Unsupported request - method type or path", 100, 33, status=400)
        auth = headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if auth.split(" ", 1)[0] in ("Bearer", "OAuth") and " " in auth else \
            (parse_qs(parts.query).get("access_token") or [""])[0]
        if not token:
            return meta_error("An active access token must be used to query information about the current user.", 2500)
        if token != self.token:
            return meta_error("Invalid OAuth access token - Cannot parse access token", 190,
                              headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'})
        if match.group(1) != self.audience_id:
            return meta_error(f"Unsupported post request. Object with ID '{match.group(1)}' does not exist", 100, 33)
        try:
            data = json.loads(body)
            payload, session = data["payload"], data.get("session")
            schema, rows = payload["schema"], payload["data"]
        except (ValueError, KeyError, TypeError):
            return meta_error("(#100) The parameter payload is required", 100)
        if self.throttle:
            self.throttle -= 1
            self.calls.append((method, 400, len(rows), session))
            usage = {"1234567890": [{"type": "custom_audience", "call_count": 100, "total_cputime": 25,
                                     "total_time": 25, "estimated_time_to_regain_access": 1}]}
            return meta_error("There have been too many calls to this ad-account. Wait a bit and try again.",
                              80003, 2446079, headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
        status, answer, extra = self._check(schema, rows, session)
        self.calls.append((method, status, len(rows) if isinstance(rows, list) else None, session))
        if status != 200:
            return status, answer, extra
        schema = [schema] if isinstance(schema, str) else schema
        matching = [n for n, k in enumerate(schema) if k in META_MATCH_KEYS]
        for row in rows:
            ids = tuple(row)
            if method == "POST":
                self.members.add(ids)
            else:  # a deletion removes the members matched by any of its identifying keys
                self.members = {m for m in self.members
                                if not any(ids[n] and m[n] == ids[n] for n in matching)}
        return 200, {"audience_id": self.audience_id, "session_id": str(session["session_id"]),
                     "num_received": len(rows), "num_invalid_entries": 0, "invalid_entry_samples": {}}, None

    def _check(self, schema, rows, session):
        if isinstance(schema, str):
            schema = [schema]
        if not isinstance(schema, list) or not schema:
            return meta_error("(#100) param payload[schema] must be a key or an array of keys", 100)
        unknown = [k for k in schema if k not in META_KEYS]
        if unknown:
            return meta_error(f"(#100) The schema key {unknown[0]} is not supported", 100)
        if not isinstance(rows, list) or not rows:
            return meta_error("(#100) param payload[data] must be a non-empty array", 100)
        if len(rows) > self.limit:
            return meta_error(f"(#100) Too many users in payload: {len(rows)}. The maximum is {self.limit} "
                              "users per request", 100)
        for row in rows:
            if not isinstance(row, list) or len(row) != len(schema):
                return meta_error("(#100) Each data row must have as many values as the schema", 100)
            for key, value in zip(schema, row):
                if key in META_UNHASHED or value == "":
                    continue
                if not isinstance(value, str) or not SHA256.match(value):
                    return meta_error(f"(#100) Data for {key} must be normalised and SHA-256 hashed "
                                      "(64 lowercase hex characters)", 100, 1870034)
        if not isinstance(session, dict):
            return meta_error("(#100) param session is required for uploads", 100)
        if not (isinstance(session.get("session_id"), int) and isinstance(session.get("batch_seq"), int)
                and session["batch_seq"] >= 1 and isinstance(session.get("last_batch_flag"), bool)):
            return meta_error("(#100) session needs session_id (int), batch_seq (int >= 1) and "
                              "last_batch_flag (bool)", 100)
        return 200, None, None


# --- Google -------------------------------------------------------------------------------------

def google_error(status, grpc_status, message, errors, headers=None):
    return status, {"error": {"code": status, "message": message, "status": grpc_status, "details": [{
        "@type": "type.googleapis.com/google.ads.googleads.v17.errors.GoogleAdsFailure",
        "errors": errors, "requestId": "gt-test-request"}]}}, headers


def ads_error(kind, code, message, index=None, extra=None):
    error = {"errorCode": {kind: code}, "message": message}
    if index is not None:
        error["location"] = {"fieldPathElements": [{"fieldName": "operations", "index": index}]}
    if extra:
        error.update(extra)
    return error


class GoogleServer(LoopbackServer):
    def __init__(self, customer_id="1234567890", user_list_id="987654321", developer_token="dev-token",
                 access_token="google-test-token", limit=100_000, throttle=0):
        super().__init__()
        self.customer_id = customer_id
        self.user_list = f"customers/{customer_id}/userLists/{user_list_id}"
        self.developer_token = developer_token
        self.access_token = access_token
        self.limit = limit
        self.throttle = throttle
        self.base_url = f"{self.origin}/v17"
        self.jobs: dict[str, dict] = {}  # resource name -> {"kind", "status", "operations", "external_id"}
        self.members: set[str] = set()  # identifier hashes on the list (applied when a job runs)
        self.calls: list[tuple[str, int, int | None]] = []  # (verb, status, operations)
        self._next = 1000

    def handle(self, method, path, headers, body):
        status, answer, extra = self._handle(method, urlsplit(path).path, headers, body)
        verb = path.rsplit(":", 1)[-1] if ":" in path else path
        ops = None
        try:
            ops = len(json.loads(body).get("operations", [])) if verb == "addOperations" else None
        except (ValueError, AttributeError):
            pass
        self.calls.append((verb, status, ops))
        return status, answer, extra

    def _handle(self, method, path, headers, body):
        if method != "POST":
            return google_error(404, "NOT_FOUND", "Method not found.", [])
        if headers.get("authorization") != f"Bearer {self.access_token}":
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                                [ads_error("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")])
        if headers.get("developer-token") != self.developer_token:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
                                [ads_error("authenticationError", "AUTHENTICATION_ERROR",
                                           "The developer token is missing or not valid.")])
        if self.throttle:
            self.throttle -= 1
            return google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                                [ads_error("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests.",
                                           extra={"details": {"quotaErrorDetails": {
                                               "rateScope": "DEVELOPER", "rateName": "Requests per developer",
                                               "retryDelay": "2s"}}})])
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", [])
        match = re.fullmatch(r"/v\d+/customers/(\d+)/offlineUserDataJobs:create", path)
        if match:
            return self._create(match.group(1), data)
        match = re.fullmatch(r"/v\d+/(customers/\d+/offlineUserDataJobs/\d+):(addOperations|run)", path)
        if match and match.group(1) in self.jobs:
            job = self.jobs[match.group(1)]
            return self._add(job, data) if match.group(2) == "addOperations" else self._run(match.group(1), job)
        match = re.fullmatch(r"/v\d+/customers/(\d+)/googleAds:search", path)
        if match:
            return self._search(data)
        return google_error(404, "NOT_FOUND", "Requested entity was not found.", [])

    def _create(self, customer_id, data):
        job = data.get("job") if isinstance(data, dict) else None
        if not isinstance(job, dict) or job.get("type") != "CUSTOMER_MATCH_USER_LIST":
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("offlineUserDataJobError", "INVALID_USER_LIST_TYPE",
                                           "Type of the user list is not applicable for the job.")])
        metadata = job.get("customerMatchUserListMetadata") or {}
        if customer_id != self.customer_id or metadata.get("userList") != self.user_list:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("offlineUserDataJobError", "INVALID_USER_LIST_ID",
                                           "The user list ID provided for the job is invalid.")])
        self._next += 1
        name = f"customers/{customer_id}/offlineUserDataJobs/{self._next}"
        self.jobs[name] = {"kind": None, "status": "PENDING", "operations": [], "external_id": job.get("externalId")}
        return 200, {"resourceName": name}, None

    def _add(self, job, data):
        operations = data.get("operations")
        if not isinstance(operations, list) or not operations:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("requestError", "REQUIRED_FIELD_MISSING", "operations are required.")])
        if job["status"] != "PENDING":
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("offlineUserDataJobError", "JOB_ALREADY_STARTED",
                                           "Once the upload job is started, new operations cannot be added.")])
        if len(operations) > self.limit:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS",
                                           f"Maximum number of user identifiers allowed per request is {self.limit} "
                                           "and per operation is 20.")])
        partial = bool(data.get("enablePartialFailure"))
        kinds, failures, accepted = set(), [], []
        for index, op in enumerate(operations):
            if not isinstance(op, dict) or len(op) != 1 or next(iter(op)) not in ("create", "remove"):
                name = next(iter(op), "?") if isinstance(op, dict) else "?"
                return google_error(400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{name}" '
                                    f"at 'operations[{index}]': Cannot find field.", [])
            kind, user_data = next(iter(op.items()))
            kinds.add(kind)
            identifiers = (user_data or {}).get("userIdentifiers")
            if not isinstance(identifiers, list) or not identifiers:
                failures.append(ads_error("offlineUserDataJobError", "MISSING_USER_IDENTIFIER",
                                          "The user identifier is missing valid data.", index))
                continue
            for ident in identifiers:
                unknown = [k for k in (ident or {}) if k not in GOOGLE_IDENTIFIER_FIELDS]
                if unknown:
                    return google_error(400, "INVALID_ARGUMENT",
                                        f'Invalid JSON payload received. Unknown name "{unknown[0]}" at '
                                        f"'operations[{index}].{kind}.user_identifiers[0]': Cannot find field.", [])
            if len(identifiers) > 20:
                failures.append(ads_error("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS",
                                          "Maximum number of user identifiers per operation is 20.", index))
                continue
            bad = [v for ident in identifiers for k, v in ident.items()
                   if k in GOOGLE_HASHED and not (isinstance(v, str) and SHA256.match(v))]
            if bad:
                failures.append(ads_error("offlineUserDataJobError", "INVALID_SHA256_FORMAT",
                                          "The SHA256 encoded value is malformed.", index))
                continue
            accepted.append((kind, [v for ident in identifiers for k, v in ident.items() if k in GOOGLE_HASHED]))
        if len(kinds | ({job["kind"]} if job["kind"] else set())) > 1:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("offlineUserDataJobError", "CONFLICTING_OPERATION",
                                           "Mixing creation and removal of offline data in the same job is not "
                                           "allowed.")])
        if failures and not partial:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", failures)
        job["kind"] = next(iter(kinds))
        job["operations"].extend(accepted)
        if failures:
            return 200, {"partialFailureError": {"code": 3, "message": "Multiple errors in 'details'.",
                                                 "details": [{"@type": "type.googleapis.com/google.ads.googleads."
                                                              "v17.errors.GoogleAdsFailure", "errors": failures}]}}, None
        return 200, {}, None

    def _run(self, name, job):
        if job["status"] != "PENDING":
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("offlineUserDataJobError", "JOB_ALREADY_STARTED",
                                           "Once the upload job is started, new operations cannot be added.")])
        job["status"] = "SUCCESS"
        for kind, hashes in job["operations"]:
            if kind == "create":
                self.members.update(hashes)
            else:
                self.members.difference_update(hashes)
        return 200, {"name": f"customers/{self.customer_id}/operations/{name.rsplit('/', 1)[1]}"}, None

    def _search(self, data):
        query = (data or {}).get("query", "")
        if "FROM offline_user_data_job" not in query:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                [ads_error("queryError", "UNEXPECTED_INPUT", "Only offline_user_data_job here.")])
        results = [{"offlineUserDataJob": {"resourceName": name, "status": job["status"],
                                           "externalId": job["external_id"], "type": "CUSTOMER_MATCH_USER_LIST"}}
                   for name, job in self.jobs.items()
                   if "status = 'PENDING'" not in query or job["status"] == "PENDING"]
        return 200, {"results": results, "fieldMask": "offlineUserDataJob.resourceName,"
                                                      "offlineUserDataJob.externalId,offlineUserDataJob.status"}, None
