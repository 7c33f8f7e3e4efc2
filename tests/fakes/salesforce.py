"""A fake Salesforce REST API for simple-salesforce, served through `responses` (which
intercepts `requests` at the transport, so the https:// URLs simple-salesforce builds
never leave the process).

It follows API-NOTES section A: sObject Collections PATCH with at most 200 records,
HTTP 200 and in-order SaveResults even when records fail (a failed item has no ``id``),
``allOrNone`` rollback; top-level errors as JSON arrays with ``errorCode`` (401
INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED, 400 INVALID_FIELD); ``Sforce-Limit-Info``
on every response; describe; SOQL queries paged by ``nextRecordsUrl`` paths with LIKE
compared case-insensitively on raw strings; Bulk API 2.0 ingest (PUT -> 201, the job
only runs after the UploadComplete PATCH, CSV results); SOAP login. Faults can be
scripted; every request is logged.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import responses

INSTANCE = "acme.my.salesforce.com"
VERSION = "59.0"
BASE = f"https://{INSTANCE}/services/data/v{VERSION}/"

OUR_FIELDS = {
    "Integration_Health_Score__c": "double",
    "Integration_Health_Band__c": "string",
    "Integration_Segments__c": "string",
    "Expansion_Ready__c": "boolean",
    "Active_Integrations__c": "double",
    "Integration_Health_Reason__c": "string",
    "Integration_Scored_At__c": "datetime",
}
TASK_EXT = "Integration_Signals_Task_Id__c"
STANDARD_FIELDS = {"Id": "id", "Name": "string", "Website": "url", "CreatedDate": "datetime"}


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with status/body, or raise ``error``."""

    method: str
    path: str  # regex on the path after BASE, e.g. r"composite/sobjects"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    error: type[Exception] | None = None


@dataclass
class Logged:
    method: str
    path: str
    body: Any
    status: int


class FakeSalesforce:
    def __init__(self, *, token: str = "00Dxx0000001gPL!AR8AQJXg.test", api_limit: int = 15000):
        self.tokens = {token}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.fields = {**STANDARD_FIELDS, **OUR_FIELDS}
        self.read_only = {"Id", "CreatedDate"}
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.writes = Counter[str]()
        self.refuse: dict[str, tuple[str, str]] = {}  # id -> (statusCode, message)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.api_usage = 0
        self.api_limit = api_limit
        self.logins = 0
        self.password = "hunter2-password"
        self._id = 0
        self._expire: tuple[str, str, int] | None = None
        self.tasks: dict[str, dict[str, Any]] = {}  # by Integration_Signals_Task_Id__c
        self.task_writes = Counter[str]()
        self.task_field = True  # the Activity custom field is deployed
        # A Salesforce (or proxy) that echoes the request's headers, the session id
        # among them, in every error message it answers.
        self.echo_headers = False

    # ------------------------------------------------------------------ helpers
    def add_account(self, account_id: str | None = None, **fields: Any) -> str:
        if account_id is None:
            self._id += 1
            account_id = f"001FAKE{self._id:011d}"
        self.accounts[account_id] = {"Id": account_id, **fields}
        return account_id

    def expire_sessions(self) -> None:
        self.tokens.clear()

    def expire_before(self, method: str, path: str, nth: int) -> None:
        """Expire every session just before the ``nth`` request to ``path`` (mid-run)."""
        self._expire = (method, path, nth)

    def requests(self, method: str, path: str) -> list[Logged]:
        return [r for r in self.log if r.method == method and re.fullmatch(path, r.path)]

    def collection_calls(self) -> int:
        return len(self.requests("PATCH", "composite/sobjects"))

    def bulk_jobs_created(self) -> int:
        return len(self.requests("POST", "jobs/ingest"))

    # ------------------------------------------------------------------ wiring
    def register(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(
            responses.POST,
            re.compile(r"https://[^/]+/services/Soap/u/.*"),
            callback=self._login,
        )
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(BASE) + r".*"), callback=self._callback)

    def _login(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        self.log.append(Logged("POST", "login", None, 200))
        if f"<n1:password>{self.password}" not in body:
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
                "<soapenv:Fault><faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN:"
                " Invalid username, password, security token; or user locked out."
                + (f" (request: {escape(body)})" if self.echo_headers else "")
                + "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return 500, {"Content-Type": "text/xml"}, fault
        self.logins += 1
        token = f"00Dxx0000001gPL!login{self.logins}.{uuid.uuid4().hex[:8]}"
        self.tokens.add(token)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>https://{INSTANCE}/services/Soap/u/{VERSION}/00Dxx0000001gPL</serverUrl>"
            f"<sessionId>{token}</sessionId></result></loginResponse></soapenv:Body>"
            "</soapenv:Envelope>"
        )
        return 200, {"Content-Type": "text/xml"}, xml

    def _callback(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        status, headers, text = self._answer(request)
        if self.echo_headers and (status >= 400 or '"errors": [{' in text):
            text = self._echo(text, request)
        return status, headers, text

    def _echo(self, text: str, request: requests.PreparedRequest) -> str:
        """Every error message of the answer, followed by the request's headers."""
        echo = f" (request headers: {dict(request.headers)})"
        try:
            payload = json.loads(text)
        except ValueError:
            return text + echo
        items = payload if isinstance(payload, list) else [payload]
        for item in items:
            if not isinstance(item, dict):
                continue
            for error in [item, *(item.get("errors") or [])]:
                if isinstance(error, dict) and "message" in error:
                    error["message"] = f"{error['message']}{echo}"
        return json.dumps(payload)

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = urlparse(request.url)
        path = url.path.split(f"/services/data/v{VERSION}/", 1)[1]
        raw = request.body
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == request.method
                and re.fullmatch(fault.path, path)
            ):
                fault.times -= 1
                self.log.append(Logged(request.method or "", path, body, fault.status))
                if fault.error is not None:
                    raise fault.error(f"fake {fault.error.__name__}")
                return self._reply(fault.status, fault.body, fault.headers)
        if (
            self._expire is not None
            and self._expire[0] == request.method
            and re.fullmatch(self._expire[1], path)
        ):
            seen = len(self.requests(self._expire[0], self._expire[1])) + 1
            if seen >= self._expire[2]:
                self.expire_sessions()
                self._expire = None
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.tokens:
            self.log.append(Logged(request.method or "", path, body, 401))
            return self._reply(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
        self.api_usage += 1
        if self.api_usage > self.api_limit:
            self.log.append(Logged(request.method or "", path, body, 403))
            return self._reply(
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
            )
        status, payload, headers = self._route(request.method or "", path, url.query, body)
        self.log.append(Logged(request.method or "", path, body, status))
        return self._reply(status, payload, headers)

    def _reply(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        out = {
            "Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.api_limit}",
            "Content-Type": "application/json;charset=UTF-8",
            **(headers or {}),
        }
        if isinstance(payload, str):
            return status, out, payload
        return status, out, json.dumps(payload) if payload is not None else ""

    # ------------------------------------------------------------------ routes
    def _route(
        self, method: str, path: str, query: str, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path == "sobjects/Account/describe":
            return 200, self._describe(), {}
        if method == "GET" and path in ("query", "query/"):
            soql = parse_qs(query)["q"][0]
            return self._query(soql)
        if method == "GET" and path.startswith("query/"):
            return self._query_more(path.split("/", 1)[1])
        if method == "PATCH" and path == "composite/sobjects":
            return self._collections(body)
        if method == "GET" and path == "sobjects/Task/describe":
            names = ["Id", "Subject", "Status", "Priority", "ActivityDate", "Description", "WhatId"]
            if self.task_field:
                names.append(TASK_EXT)
            return (
                200,
                {"name": "Task", "fields": [{"name": n, "updateable": n != "Id"} for n in names]},
                {},
            )
        if method == "PATCH" and path == f"composite/sobjects/Task/{TASK_EXT}":
            return self._upsert_tasks(body)
        if path.startswith("jobs/ingest"):
            return self._bulk(method, path, body)
        return (
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            {},
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "name": "Account",
            "label": "Account",
            "keyPrefix": "001",
            "custom": False,
            "createable": True,
            "updateable": True,
            "urls": {},
            "childRelationships": [],
            "fields": [
                {
                    "name": name,
                    "label": name,
                    "type": type_,
                    "length": 255,
                    "custom": name.endswith("__c"),
                    "nillable": True,
                    "createable": name not in self.read_only,
                    "updateable": name not in self.read_only,
                    "externalId": False,
                    "unique": False,
                    "idLookup": name == "Id",
                    "calculated": False,
                    "defaultValue": None,
                    "picklistValues": [],
                    "referenceTo": [],
                    "relationshipName": None,
                }
                for name, type_ in self.fields.items()
            ],
        }

    _pages: dict[str, list[dict[str, Any]]] = {}

    def _query(self, soql: str) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"SELECT Id, Website FROM Account WHERE (.+)", soql, re.S)
        if not m:
            return (
                400,
                [{"errorCode": "MALFORMED_QUERY", "message": f"unexpected query: {soql[:80]}"}],
                {},
            )
        patterns = []
        rest = m.group(1)
        clause = re.compile(r"Website LIKE '((?:[^'\\]|\\.)*)'(?: OR |$)", re.S)
        pos = 0
        while pos < len(rest):
            cm = clause.match(rest, pos)
            if not cm:
                return (
                    400,
                    [
                        {
                            "errorCode": "MALFORMED_QUERY",
                            "message": f"bad clause at {rest[pos : pos + 60]}",
                        }
                    ],
                    {},
                )
            patterns.append(_like_regex(cm.group(1)))
            pos = cm.end()
        hits = [
            {
                "attributes": {
                    "type": "Account",
                    "url": f"/services/data/v{VERSION}/sobjects/Account/{a['Id']}",
                },
                "Id": a["Id"],
                "Website": a.get("Website"),
            }
            for a in self.accounts.values()
            if a.get("Website") and any(p.fullmatch(a["Website"]) for p in patterns)
        ]
        return self._page(hits, 0)

    def _page(self, hits: list[dict[str, Any]], start: int) -> tuple[int, Any, dict[str, str]]:
        key = f"01gFAKE{uuid.uuid4().hex[:8]}"
        chunk = hits[start : start + 2000]
        done = start + 2000 >= len(hits)
        out: dict[str, Any] = {"totalSize": len(hits), "done": done, "records": chunk}
        if not done:
            FakeSalesforce._pages[key] = hits
            out["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{key}-{start + 2000}"
        return 200, out, {}

    def _query_more(self, locator: str) -> tuple[int, Any, dict[str, str]]:
        key, start = locator.rsplit("-", 1)
        return self._page(FakeSalesforce._pages[key], int(start))

    def _validate(self, record: dict[str, Any]) -> tuple[str, str, list[str]] | None:
        rid = str(record.get("id") or record.get("Id") or "")
        if not re.fullmatch(r"001[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?", rid):
            return "MALFORMED_ID", f"Account ID: id value of incorrect type: {rid}", ["Id"]
        if rid not in self.accounts:
            return "ENTITY_IS_DELETED", "entity is deleted", []
        if rid in self.refuse:
            code, message = self.refuse[rid]
            return code, message, []
        for name, value in record.items():
            if name in ("id", "Id", "attributes"):
                continue
            kind = self.fields[name]
            if kind == "double" and value is not None and not isinstance(value, int | float):
                return (
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{name}: value not of required type: {value}",
                    [name],
                )
            if kind == "boolean" and not isinstance(value, bool):
                return (
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{name}: value not of required type: {value}",
                    [name],
                )
            if kind == "string" and value is not None and len(str(value)) > 255:
                return "STRING_TOO_LONG", f"{name}: data value too large", [name]
        return None

    def _unknown_field(self, records: list[dict[str, Any]]) -> str | None:
        for record in records:
            for name in record:
                if name not in ("id", "Id", "attributes") and name not in self.fields:
                    return name
        return None

    def _collections(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        records = (body or {}).get("records") or []
        if len(records) > 200:
            return (
                400,
                [
                    {
                        "errorCode": "EXCEEDED_ID_LIMIT",
                        "message": "record limit reached. cannot submit more than 200 records into this call",
                    }
                ],
                {},
            )
        unknown = self._unknown_field(records)
        if unknown:
            return (
                400,
                [
                    {
                        "errorCode": "INVALID_FIELD",
                        "message": f"No such column '{unknown}' on sobject of type Account",
                    }
                ],
                {},
            )
        for r in records:
            for name in r:
                if name in self.read_only and name != "Id":
                    return (
                        400,
                        [
                            {
                                "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                                "message": f"Unable to create/update fields: {name}.",
                            }
                        ],
                        {},
                    )
        problems = [self._validate(r) for r in records]
        all_or_none = bool((body or {}).get("allOrNone"))
        if all_or_none and any(problems):
            return (
                200,
                [
                    {
                        "success": False,
                        "errors": [{"statusCode": p[0], "message": p[1], "fields": p[2]}],
                    }
                    if p
                    else {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                                "fields": [],
                            }
                        ],
                    }
                    for p in problems
                ],
                {},
            )
        out = []
        for r, p in zip(records, problems, strict=True):
            if p:
                out.append(
                    {
                        "success": False,
                        "errors": [{"statusCode": p[0], "message": p[1], "fields": p[2]}],
                    }
                )
                continue
            rid = r["id"]
            self.accounts[rid].update({k: v for k, v in r.items() if k not in ("id", "attributes")})
            self.writes[rid] += 1
            out.append({"id": rid, "success": True, "errors": []})
        return 200, out, {}

    def _upsert_tasks(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        """sObject Collections upsert by external id (API-NOTES A2)."""
        records = (body or {}).get("records") or []
        if len(records) > 200:
            return 400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": "record limit reached"}], {}
        if not self.task_field:
            return (
                400,
                [
                    {
                        "errorCode": "INVALID_FIELD",
                        "message": f"No such column '{TASK_EXT}' on sobject of type Task",
                    }
                ],
                {},
            )
        out = []
        for r in records:
            if r.get("attributes", {}).get("type") != "Task" or "id" in r or "Id" in r:
                return (
                    400,
                    [
                        {
                            "errorCode": "INVALID_INPUT",
                            "message": "each record needs attributes.type Task and no id",
                        }
                    ],
                    {},
                )
            key = str(r.get(TASK_EXT))
            what = r.get("WhatId")
            status = r.get("Status")
            if key not in self.tasks and (not what or not r.get("Subject")):
                out.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "REQUIRED_FIELD_MISSING",
                                "message": "Required fields are missing: [Subject, WhatId]",
                                "fields": ["Subject"],
                            }
                        ],
                    }
                )
                continue
            if what is not None and what not in self.accounts:
                out.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "FIELD_INTEGRITY_EXCEPTION",
                                "message": "Related To ID: id value of incorrect type",
                                "fields": ["WhatId"],
                            }
                        ],
                    }
                )
                continue
            if status is not None and status not in (
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ):
                out.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                "message": f"Status: bad value for restricted picklist field: {status}",
                                "fields": ["Status"],
                            }
                        ],
                    }
                )
                continue
            created = key not in self.tasks
            if created:
                self.tasks[key] = {"Id": f"00TFAKE{len(self.tasks) + 1:011d}"}
            self.tasks[key].update({k: v for k, v in r.items() if k != "attributes"})
            self.task_writes[key] += 1
            out.append(
                {"id": self.tasks[key]["Id"], "success": True, "errors": [], "created": created}
            )
        return 200, out, {}

    # ------------------------------------------------------------------ bulk 2.0
    def _bulk(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        parts = path.split("/")
        if method == "POST" and len(parts) == 2:
            job_id = f"750FAKE{len(self.jobs) + 1:011d}"
            job = {
                "id": job_id,
                "operation": body["operation"],
                "object": body["object"],
                "state": "Open",
                "contentType": "CSV",
                "apiVersion": float(VERSION),
                "jobType": "V2Ingest",
                "contentUrl": f"services/data/v{VERSION}/jobs/ingest/{job_id}/batches",
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
                "numberRecordsProcessed": 0,
                "numberRecordsFailed": 0,
                "_csv": None,
                "_ok": [],
                "_failed": [],
            }
            self.jobs[job_id] = job
            return 200, _public(job), {}
        job = self.jobs.get(parts[2])
        if job is None:
            return (
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                {},
            )
        if method == "PUT" and parts[3:] == ["batches"]:
            if job["state"] != "Open":
                return 400, [{"errorCode": "INVALIDJOBSTATE", "message": "Job is not open"}], {}
            job["_csv"] = body if isinstance(body, str) else json.dumps(body)
            return 201, None, {}
        if method == "PATCH" and len(parts) == 3:
            if body.get("state") == "UploadComplete":
                job["state"] = "UploadComplete"
                self._run_job(job)
            elif body.get("state") == "Aborted":
                job["state"] = "Aborted"
            return 200, _public(job), {}
        if method == "GET" and len(parts) == 3:
            return 200, _public(job), {}
        if method == "GET" and len(parts) == 4:
            kind = parts[3]
            if kind == "successfulResults":
                return (
                    200,
                    _csv(["sf__Id", "sf__Created"], job["_ok"]),
                    {"Content-Type": "text/csv"},
                )
            if kind == "failedResults":
                return (
                    200,
                    _csv(["sf__Id", "sf__Error"], job["_failed"]),
                    {"Content-Type": "text/csv"},
                )
            if kind in ("unprocessedrecords", "unprocessedRecords"):
                return 200, "", {"Content-Type": "text/csv"}
        return (
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            {},
        )

    def _run_job(self, job: dict[str, Any]) -> None:
        rows = list(csv.DictReader(io.StringIO(job["_csv"] or "")))
        unknown = self._unknown_field(rows)
        if unknown:
            job["state"] = "Failed"
            job["errorMessage"] = f"InvalidBatch : Field name not found : {unknown}"
            return
        for row in rows:
            record: dict[str, Any] = {"id": row["Id"]}
            for name, cell in row.items():
                if name == "Id" or cell == "":
                    continue
                kind = self.fields[name]
                if cell == "#N/A":
                    record[name] = None
                elif kind == "double":
                    try:
                        record[name] = float(cell)
                    except ValueError:
                        record[name] = cell
                elif kind == "boolean":
                    record[name] = cell == "true"
                else:
                    record[name] = cell
            problem = self._validate(record)
            if problem:
                job["_failed"].append(
                    {"sf__Id": "", "sf__Error": f"{problem[0]}:{problem[1]}:--", **row}
                )
                continue
            self.accounts[row["Id"]].update({k: v for k, v in record.items() if k != "id"})
            self.writes[row["Id"]] += 1
            job["_ok"].append({"sf__Id": row["Id"], "sf__Created": "false", **row})
        job["numberRecordsProcessed"] = len(rows)
        job["numberRecordsFailed"] = len(job["_failed"])
        job["state"] = "JobComplete"


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _csv(lead: list[str], rows: list[dict[str, str]]) -> str:
    if not rows:
        return ",".join(lead) + "\n"
    columns = lead + [c for c in rows[0] if c not in lead]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _like_regex(literal: str) -> re.Pattern[str]:
    """A SOQL LIKE pattern (inside quotes, escapes undone) as a case-insensitive regex."""
    out = []
    i = 0
    while i < len(literal):
        ch = literal[i]
        if ch == "\\" and i + 1 < len(literal):
            nxt = literal[i + 1]
            out.append(re.escape({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt)))
            i += 2
            continue
        if ch == "'":
            raise ValueError("unescaped quote in SOQL literal")
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.I | re.S)
