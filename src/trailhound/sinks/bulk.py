"""Alerts into an Elasticsearch alerts index through the `_bulk` API, as Kibana stores them.

- Each alert is a `create` action into `index` (default `.alerts-security.alerts-default`, the
  alias Kibana's security alerts are read from) with `_id` = its `kibana.alert.uuid`, and the
  alert document itself (already in Kibana's alert schema) as the source. Alert ids are
  deterministic, so a replay is idempotent: a 409 (version conflict: the document exists) counts
  as already delivered ("duplicates"), never as a failure. Top-level ES metadata fields an input
  document may carry (`_id`, `_index`...) are left out of the source, as Elasticsearch refuses them.
- Kibana's alerts table shows an alert only to a space and a user allowed its rule type, which it
  reads from fields the rule executor writes; the alert documents Trailhound builds lack them, so
  this sink adds them where absent: `kibana.space_ids` (the space of the index,
  `.alerts-security.alerts-<space>`, or `space=`), `kibana.alert.rule.producer` and `.consumer`
  ("siem"), `kibana.alert.rule.rule_type_id` and `.category` from the rule's type (eql →
  siem.eqlRule, "Event Correlation Rule"...), and `kibana.alert.rule.uuid`, derived from the
  rule_id (no Kibana rule object has it: the alert's rule link leads nowhere).
- Requests hold at most `batch` alerts (default 500) and about `max_bytes` (default 5 MiB).
- A whole request that fails (connection error, time-out, 429, 5xx) is retried with backoff and
  jitter, Retry-After honoured; a request answered 200 with per-item errors has only its failed
  items retried, and only those a retry can help (429, 5xx); the others (a mapping error, 400)
  are counted as failed with Elasticsearch's reason. After the retries run out the rest count as
  failed; while Elasticsearch is unreachable the next batches get one attempt each, so a hunt does
  not spend minutes per rule on a dead cluster.
- Credentials come from the environment, never from the command line: an API key
  (`Authorization: ApiKey ...`) from TRAILHOUND_ES_API_KEY, or a user and password (basic) from
  TRAILHOUND_ES_USERNAME and TRAILHOUND_ES_PASSWORD; the spec may name other variables
  (`api_key_env=`, `username_env=`, `password_env=`).
"""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson

from .delivery import Delivery, HttpClient, Retry, retry_after, retryable, transport_error

DEFAULT_INDEX = ".alerts-security.alerts-default"
#: fields Elasticsearch keeps for itself: a source holding one is refused ("metadata field")
METADATA = frozenset({"_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term", "_score",
                      "_ignored", "_type", "_tier", "_field_names", "_doc_count", "_data_stream_timestamp"})


#: Kibana's rule type id and category per detection-rules `type`
RULE_TYPES = {
    "query": ("siem.queryRule", "Custom Query Rule"),
    "eql": ("siem.eqlRule", "Event Correlation Rule"),
    "threshold": ("siem.thresholdRule", "Threshold Rule"),
    "new_terms": ("siem.newTermsRule", "New Terms Rule"),
    "saved_query": ("siem.savedQueryRule", "Saved Query Rule"),
    "threat_match": ("siem.indicatorRule", "Indicator Match Rule"),
    "machine_learning": ("siem.mlRule", "Machine Learning Rule"),
    "esql": ("siem.esqlRule", "ES|QL Rule"),
}
_RULE_NAMESPACE = uuid.UUID("6f1d7a52-3c8e-5b8f-9d0a-7f3e2b1c4d5e")  # Trailhound's, for rule uuids from rule_ids


def space_of(index: str) -> str:
    """The Kibana space an alerts index belongs to (`.alerts-security.alerts-<space>`), else "default"."""
    prefix = ".alerts-security.alerts-"
    return index[len(prefix):] or "default" if index.startswith(prefix) else "default"


def kibana_fields(alert: dict, space: str) -> dict:
    """What Kibana's rule executor writes besides the alert itself, for the fields the alert lacks."""
    added: dict = {}
    if "kibana.space_ids" not in alert:
        added["kibana.space_ids"] = [space]
    for key in ("kibana.alert.rule.producer", "kibana.alert.rule.consumer"):
        if key not in alert:
            added[key] = "siem"
    known = RULE_TYPES.get(str(alert.get("kibana.alert.rule.type", "")))
    if known:
        if "kibana.alert.rule.rule_type_id" not in alert:
            added["kibana.alert.rule.rule_type_id"] = known[0]
        if "kibana.alert.rule.category" not in alert:
            added["kibana.alert.rule.category"] = known[1]
    rule_id = alert.get("kibana.alert.rule.rule_id")
    if "kibana.alert.rule.uuid" not in alert and isinstance(rule_id, str) and rule_id:
        added["kibana.alert.rule.uuid"] = str(uuid.uuid5(_RULE_NAMESPACE, rule_id))
    return added


def _reason(error) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
    return str(error)


class BulkSink:
    def __init__(self, url: str, index: str = DEFAULT_INDEX, *, headers: dict[str, str] | None = None,
                 batch: int = 500, max_bytes: int = 5 << 20, retry: Retry | None = None,
                 refresh: str | None = None, ca: str | None = None, space: str | None = None,
                 name: str | None = None) -> None:
        base = urlsplit(url)
        path = base.path.rstrip("/") + "/_bulk"
        self.url = base._replace(path=path, query=f"refresh={refresh}" if refresh else "")
        self.index = index
        self.space = space or space_of(index)
        self.name = name or f"elasticsearch:{url}"
        self.batch = max(1, batch)
        self.max_bytes = max_bytes
        self.retry = retry or Retry()
        self.delivery = Delivery()
        self.client = HttpClient(self.url, {"User-Agent": "trailhound", **(headers or {})}, self.retry.timeout,
                                 ca)
        self._down = False

    def _items(self, alerts: Iterable[dict]) -> list[bytes]:
        items = []
        for alert in alerts:
            action: dict = {"_index": self.index}
            uuid = alert.get("kibana.alert.uuid")
            if isinstance(uuid, str) and uuid:
                action["_id"] = uuid
            doc = alert if METADATA.isdisjoint(alert) else {k: v for k, v in alert.items() if k not in METADATA}
            added = kibana_fields(alert, self.space)
            if added:
                doc = {**doc, **added}
            items.append(orjson.dumps({"create": action}) + b"\n" + orjson.dumps(doc, default=str) + b"\n")
        return items

    def write(self, alerts: Iterable[dict]) -> None:
        chunk: list[bytes] = []
        size = 0
        for item in self._items(alerts):
            if chunk and (len(chunk) >= self.batch or size + len(item) > self.max_bytes):
                self._send(chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += len(item)
        if chunk:
            self._send(chunk)

    def _send(self, pending: list[bytes]) -> None:
        attempts = 1 if self._down else self.retry.attempts
        why = ""
        for attempt in range(attempts):
            try:
                r = self.client.post(b"".join(pending), "application/x-ndjson")
            except (OSError, http.client.HTTPException) as e:
                why, wait = f"unreachable: {transport_error(e)}", self.retry.wait(attempt)
            else:
                if r.status != 200:
                    if not retryable(r.status):
                        self._fail(len(pending), f"HTTP {r.status} {r.excerpt()}".rstrip())
                        return
                    why = f"HTTP {r.status}"
                    wait = self.retry.wait(attempt, retry_after(r.headers.get("retry-after")))
                else:
                    self._down = False
                    again = self._results(r.body, pending)
                    if again is None:
                        return
                    pending = again
                    if not pending:
                        return
                    why = f"{len(pending)} items refused for now (429 or 5xx)"
                    wait = self.retry.wait(attempt)
            if attempt + 1 < attempts:
                self.delivery.retries += 1
                time.sleep(wait)
        self._down = not why.endswith("(429 or 5xx)")
        self._fail(len(pending), f"{why}, after {attempts} attempt(s)")

    def _results(self, body: bytes, sent: list[bytes]) -> list[bytes] | None:
        """Count the items of a 200 answer; the items worth sending again, or None when the answer
        cannot be read (all counted as failed)."""
        try:
            answer = orjson.loads(body)
            items = answer["items"]
            if not isinstance(items, list) or len(items) != len(sent):
                raise ValueError("one result per item expected")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            self._fail(len(sent), f"unreadable _bulk answer ({e})")
            return None
        again = []
        for item, result in zip(sent, items):
            r: dict = next(iter(result.values()), {}) if isinstance(result, dict) and result else {}
            status = r.get("status", 0) if isinstance(r, dict) else 0
            if 200 <= status < 300:
                self.delivery.delivered += 1
            elif status == 409:
                self.delivery.duplicates += 1
            elif retryable(status):
                again.append(item)
            else:
                self._fail(1, f"item refused: {status} {_reason(r.get('error') if isinstance(r, dict) else r)}")
        return again

    def _fail(self, n: int, why: str) -> None:
        self.delivery.failed += n
        self.delivery.problem(f"{self.name}: {why}")

    def close(self) -> None:
        self.client.close()
