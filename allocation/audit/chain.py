"""Tamper evidence: hash chains over the decision log and the audit records.

Each stream (the decision log; each history table the trail reads; role and promise changes)
is one chain. A record is sealed once: its seal carries ``content_hash`` (sha256 of the
record's columns as the database renders them), ``prev_hash`` (the previous seal's hash in
the stream) and ``hash = sha256(prev_hash || content_hash)``; the stream's head keeps the last
sequence and hash. Changing a record breaks its content hash; changing a seal breaks its
chain hash or its successor's ``prev_hash``; deleting records or seals breaks the sequence or
the head.

- Decision-log entries are sealed inside the run's transaction, at the end of the persist
  step (``seal_run_decisions``): content hashes in one set-based query (``sha256()`` in
  PostgreSQL; Python's on SQLite), the links in one pass over 32-byte values, the seals written
  by one ``COPY``. The stream head is locked last, so concurrent runs serialise only their
  final milliseconds.
- Audit records (history rows, role and promise changes) are sealed by ``seal_pending``
  (the beat task, every few minutes, and before each verification): every record without a
  seal above the stream's watermark, in id order. Until then a record is not yet sealed (the
  window is the beat interval).

``verify`` walks every chain (from ``since``), recomputes each sealed record's content hash
and each link, and names the first broken entry. Decision-log entries without a seal (written
outside a run's persist step, e.g. inserted by SQL) are broken entries too.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from allocation.models import AuditChainHead, AuditSeal, AuditVerification, LineDecisionLog

DECISION = "decision"
GENESIS = bytes(32)
BATCH = 5000
NULL_MARK = "\u2205"
# A history row is sealed by a later pass; the sealer rescans ids above the highest id sealed
# by passes at least this old, so a transaction that committed late is still sealed.
RESCAN_SECONDS = 3600


@dataclass(frozen=True)
class Stream:
    """One chain: the model whose table it seals and whether the persist step seals it."""

    name: str
    model: type[models.Model]
    label: str
    sealed_by_runs: bool = False

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def pk_column(self) -> str:
        return self.model._meta.pk.column


def streams() -> dict[str, Stream]:
    """Every chained stream, by name (built on first use: the models are loaded by then)."""
    from allocation.models import Customer, Order, OrderLine, RoleChange
    from exceptions.models import ApprovalRequest, DecisionException, PromiseChange
    from policies.models import PolicyRule, PolicyVersion, Protection, Quota

    found = [
        Stream(DECISION, LineDecisionLog, "decision log entry", sealed_by_runs=True),
        Stream("role", RoleChange, "role change"),
        Stream("promise", PromiseChange, "promise change"),
    ]
    for name, model in (
        ("order", Order), ("line", OrderLine), ("customer", Customer), ("exception", DecisionException),
        ("approval", ApprovalRequest), ("policy", PolicyVersion), ("policy_rule", PolicyRule),
        ("protection", Protection), ("quota", Quota),
    ):
        found.append(Stream(f"history.{name}", model.history.model, f"{name.replace('_', ' ')} history record"))
    return {stream.name: stream for stream in found}


# --------------------------------------------------------------------------- content hashes


def _columns_of(model: type[models.Model]) -> list[dict[str, str]]:
    """The stream's hashed columns: every concrete column, with the kind that decides its text."""
    columns = []
    for field in model._meta.concrete_fields:
        kind = "time" if isinstance(field, models.DateTimeField) else "plain"
        columns.append({"column": field.column, "kind": kind})
    return columns


def _content_expression(columns: Sequence[dict[str, str]], alias: str) -> str:
    """SQL text of one record's content: each column as text, NULL marked, joined by ``|``."""
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        # One row value rendered by PostgreSQL's record output (NULL and '' stay distinct), times as
        # epoch seconds (independent of the session's time zone), hashed in the database.
        values = [
            f"extract(epoch from {alias}.{quote(spec['column'])})" if spec["kind"] == "time" else f"{alias}.{quote(spec['column'])}"
            for spec in columns
        ]
        return f"sha256(convert_to(ROW({', '.join(values) or 'NULL'})::text, 'UTF8'))"
    parts = [f"coalesce(CAST({alias}.{quote(spec['column'])} AS TEXT), '{NULL_MARK}')" for spec in columns]
    return " || '|' || ".join(parts) if parts else "''"


def _as_hash(value: Any) -> bytes:
    """The content hash from the query: PostgreSQL computed it; elsewhere hash the text here."""
    if connection.vendor == "postgresql":
        return bytes(value) if value is not None else b""
    return hashlib.sha256(str(value).encode("utf-8")).digest() if value is not None else b""


def link(prev_hash: bytes, content_hash: bytes) -> bytes:
    """A seal's chain hash: sha256 of its predecessor's hash followed by its content hash."""
    return hashlib.sha256(prev_hash + content_hash).digest()


# --------------------------------------------------------------------------- heads and writes


def _locked_head(stream: Stream, *, legacy_below: int | None = None) -> AuditChainHead:
    """The stream's head, locked (created on first use with the stream's columns frozen)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {AuditChainHead._meta.db_table} "
                "(stream, \"table\", columns, seq, hash, legacy_below, low_watermark, passes, created_at, updated_at) "
                "VALUES (%s, %s, %s::jsonb, 0, %s, %s, 0, '[]'::jsonb, now(), now()) ON CONFLICT (stream) DO NOTHING",
                [stream.name, stream.table, _json(_columns_of(stream.model)), GENESIS, legacy_below],
            )
    else:
        AuditChainHead.objects.get_or_create(
            stream=stream.name,
            defaults={"table": stream.table, "columns": _columns_of(stream.model), "hash": GENESIS,
                      "legacy_below": legacy_below},
        )
    return AuditChainHead.objects.select_for_update().get(stream=stream.name)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _write_seals(head: AuditChainHead, rows: Iterable[tuple[int, Any]]) -> int:
    """Chain ``rows`` ((record id, content hash as queried), in order) onto ``head``; one write."""
    now = timezone.now()
    previous = bytes(head.hash)
    seq = head.seq
    seals = []
    for source_id, raw in rows:
        content = _as_hash(raw)
        chained = link(previous, content)
        seq += 1
        seals.append((head.stream, seq, source_id, content, previous, chained, now))
        previous = chained
    if not seals:
        return 0
    columns = ("stream", "seq", "source_id", "content_hash", "prev_hash", "hash", "sealed_at")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {AuditSeal._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
                for seal in seals:
                    copy.write_row(seal)
    else:
        AuditSeal.objects.bulk_create(
            [AuditSeal(**dict(zip(columns, seal, strict=True))) for seal in seals], batch_size=1000
        )
    AuditChainHead.objects.filter(stream=head.stream).update(seq=seq, hash=previous, updated_at=now)
    head.seq, head.hash = seq, previous
    return len(seals)


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[int, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# (run id, seals written, seconds) of the last ``seal_run_decisions`` in this process: the
# benchmark compares it with the run's persist time.
LAST_SEAL: tuple[int, int, float] | None = None


def seal_run_decisions(run_id: int) -> int:
    """Seal the decision-log entries a run just wrote (the persist step's hook, in its transaction)."""
    global LAST_SEAL
    started = time.perf_counter()
    written = _seal_run_decisions(run_id)
    LAST_SEAL = (run_id, written, time.perf_counter() - started)
    return written


def _seal_run_decisions(run_id: int) -> int:
    stream = streams()[DECISION]
    table = stream.table
    first = _fetch(f"SELECT min(id) FROM {table} WHERE run_id = %s", [run_id])[0][0]
    if first is None:
        return 0
    head = _locked_head(stream, legacy_below=first)
    expression = _content_expression(head.columns, "t")
    rows = _fetch(f"SELECT t.id, {expression} FROM {table} t WHERE t.run_id = %s ORDER BY t.id", [run_id])
    return _write_seals(head, rows)


def _seal_unsealed(stream: Stream, head: AuditChainHead, *, above: int, below: int | None = None) -> tuple[int, int]:
    """Seal every record of ``stream`` above id ``above`` (and below ``below``) that has no seal."""
    quote = connection.ops.quote_name
    pk = quote(stream.pk_column)
    expression = _content_expression(head.columns, "t")
    sealed, highest, cursor_id = 0, above, above
    while True:
        bound = f" AND t.{pk} < %s" if below is not None else ""
        params: list[Any] = [cursor_id, *([below] if below is not None else []), stream.name]
        rows = _fetch(
            f"SELECT t.{pk}, {expression} FROM {quote(stream.table)} t WHERE t.{pk} > %s{bound} "
            f"AND NOT EXISTS (SELECT 1 FROM {AuditSeal._meta.db_table} s WHERE s.stream = %s AND s.source_id = t.{pk}) "
            f"ORDER BY t.{pk} LIMIT {BATCH}",
            params,
        )
        if not rows:
            return sealed, highest
        sealed += _write_seals(head, rows)
        cursor_id = rows[-1][0]
        highest = max(highest, cursor_id)


def seal_pending(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Seal the audit records written since the last pass (every stream the runs do not seal),
    and the decision-log entries written before sealing began. Returns seals written per stream."""
    now = now or timezone.now()
    written: dict[str, int] = {}
    for stream in streams().values():
        with transaction.atomic():
            if stream.sealed_by_runs:
                head = AuditChainHead.objects.select_for_update().filter(stream=stream.name).first()
                if head is None or head.legacy_below is None:
                    continue
                count, _ = _seal_unsealed(stream, head, above=0, below=head.legacy_below)
                AuditChainHead.objects.filter(stream=stream.name).update(legacy_below=None)
                written[stream.name] = count
                continue
            head = _locked_head(stream)
            count, highest = _seal_unsealed(stream, head, above=head.low_watermark)
            passes = [p for p in head.passes if now.timestamp() - p[0] < 2 * RESCAN_SECONDS] + [[now.timestamp(), highest]]
            old = [p[1] for p in passes if now.timestamp() - p[0] >= RESCAN_SECONDS]
            low = max([head.low_watermark, *old])
            AuditChainHead.objects.filter(stream=stream.name).update(passes=passes[-20:], low_watermark=low)
            written[stream.name] = count
    return written


# --------------------------------------------------------------------------- verification


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    stream: str = ""
    source_id: int | None = None


def _first_seq_since(stream: str, since: dt.date | None) -> int:
    if since is None:
        return 1
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
    first = AuditSeal.objects.filter(stream=stream, sealed_at__gte=start).order_by("seq").values_list("seq", flat=True).first()
    return first if first is not None else 0


def _verify_stream(stream: Stream, head: AuditChainHead, since: dt.date | None) -> VerifyResult:
    quote = connection.ops.quote_name
    start = _first_seq_since(stream.name, since)
    checked = 0
    if start == 0:  # nothing sealed since then: the head must still be where the last seal is
        start = head.seq + 1
    previous = GENESIS
    if start > 1:
        prior = AuditSeal.objects.filter(stream=stream.name, seq=start - 1).values_list("hash", flat=True).first()
        if prior is None:
            return VerifyResult(False, 0, f"{stream.label}: seal #{start - 1} of the chain is missing", stream.name)
        previous = bytes(prior)
    expression = _content_expression(head.columns, "t")
    seal_table = AuditSeal._meta.db_table
    expected_seq = start
    while expected_seq <= head.seq:
        rows = _fetch(
            f"SELECT s.seq, s.source_id, s.content_hash, s.prev_hash, s.hash, t.{quote(stream.pk_column)}, {expression} "
            f"FROM {seal_table} s LEFT JOIN {quote(stream.table)} t ON t.{quote(stream.pk_column)} = s.source_id "
            f"WHERE s.stream = %s AND s.seq >= %s ORDER BY s.seq LIMIT {BATCH}",
            [stream.name, expected_seq],
        )
        if not rows:
            break
        for seq, source_id, content, prev, chained, found, raw in rows:
            name = f"{stream.label} #{source_id} (seal {seq} of stream {stream.name})"
            if seq != expected_seq:
                return VerifyResult(False, checked, f"{stream.label}: seal #{expected_seq} of the chain is missing", stream.name)
            if found is None:
                return VerifyResult(False, checked, f"{name}: the record was deleted", stream.name, source_id)
            if _as_hash(raw) != bytes(content):
                return VerifyResult(False, checked, f"{name}: its content changed after it was sealed", stream.name, source_id)
            if bytes(prev) != previous or link(previous, bytes(content)) != bytes(chained):
                return VerifyResult(False, checked, f"{name}: the chain is broken at this seal", stream.name, source_id)
            previous = bytes(chained)
            expected_seq += 1
            checked += 1
    if expected_seq - 1 != head.seq or (head.seq and previous != bytes(head.hash)):
        return VerifyResult(
            False, checked, f"{stream.label}: the chain ends at seal {expected_seq - 1}, its head says {head.seq}", stream.name
        )
    if stream.sealed_by_runs:
        unsealed = _fetch(
            f"SELECT t.id FROM {quote(stream.table)} t WHERE t.id >= %s AND NOT EXISTS "
            f"(SELECT 1 FROM {seal_table} s WHERE s.stream = %s AND s.source_id = t.id) ORDER BY t.id LIMIT 1",
            [head.legacy_below or 0, stream.name],
        )
        if unsealed:
            source_id = unsealed[0][0]
            return VerifyResult(
                False, checked, f"{stream.label} #{source_id}: it has no seal (written outside a run's persist step)",
                stream.name, source_id,
            )
    return VerifyResult(True, checked)


def verify(*, since: dt.date | None = None, trigger: str = "command", seal_first: bool = True) -> AuditVerification:
    """Verify every chain (seals from ``since`` on) and record the result; the first broken
    entry is named in ``problem``. Pending audit records are sealed first (``seal_first``)."""
    started = timezone.now()
    if seal_first:
        seal_pending(now=started)
    checked = 0
    result = VerifyResult(True, 0)
    heads = {head.stream: head for head in AuditChainHead.objects.all()}
    for name, stream in streams().items():
        head = heads.get(name)
        if head is None:
            continue
        result = _verify_stream(stream, head, since)
        checked += result.checked
        if not result.ok:
            break
    return AuditVerification.objects.create(
        started_at=started, finished_at=timezone.now(), since=since, ok=result.ok, checked=checked,
        problem=result.problem, trigger=trigger,
    )


def last_verification() -> AuditVerification | None:
    return AuditVerification.objects.order_by("-started_at", "-id").first()


def seal_of(stream: str, source_id: int) -> AuditSeal | None:
    """The seal of one record (None: not sealed yet)."""
    return AuditSeal.objects.filter(stream=stream, source_id=source_id).first()
