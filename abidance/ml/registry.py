"""The model registry in the store: versions, their artifacts and metrics, and a status each.

    reg = ModelRegistry.open("http://127.0.0.1:8123")        # or chdb:///dir, or a client
    mv = reg.register("eth-lr", "models/eth-lr-3.joblib", feature_set=spec.to_dict(),
                      train_start=..., train_end=..., params={...}, in_sample={...},
                      out_of_sample={"auc": 0.58, "n_acted": 240, "hit_rate": 0.55})
    reg.promote("eth-lr", mv.version, reason="looks sane")   # candidate -> shadow
    reg.promote("eth-lr", mv.version, reason="shadow ok")    # shadow -> live (criteria in [ml])
    reg.demote("eth-lr", mv.version, reason="drift")         # live -> shadow

Statuses: candidate -> shadow -> live, and any -> retired. One live version per name:
promoting another retires the one before. Promotion to live is refused unless the
out-of-sample metrics meet `[ml]` (min_oos_auc, min_oos_signals) and the artifact on disk
still has its registered sha256; `force=True` overrides the metrics (never the hash) and
needs a reason, which is recorded. Signals are the confident calls behind the hit rate
(classification_metrics' n_acted: one per bar, overlapping label horizons each counted),
not trades.

Storage: `models` and `model_events` (abidance/store/schema.py, migration 2). Both are
append-only: a change writes a new full row of the version into `models` (its state is
the newest row) and one row per change into `model_events`. ClickHouse has no
transactions: the rows of one change go in one insert per table (state first, then
events), and two operators promoting the same name in the same instant could both win;
the registry is an operator tool, not a lock service.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from abidance.ml.artifacts import sha256_file as file_sha256
from abidance.store import schema
from abidance.store.arrow_batch import to_arrow
from abidance.store.client import connect
from abidance.store.migrations import apply_migrations, check_identifier
from abidance.store.reader import to_ns

STATUSES = ("candidate", "shadow", "live", "retired")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# Out-of-sample metric names the criteria read, first match wins (train_model's names first).
AUC_KEYS = ("auc", "roc_auc")
SIGNALS_KEYS = ("n_acted", "signals", "n_signals")      # confident calls, not trades
HIT_RATE_KEYS = ("hit_rate", "precision", "win_rate")


class RegistryError(ValueError):
    """A registry request that cannot be done; the message says what and why."""


class PromotionRefused(RegistryError):
    """Promotion to live refused: the out-of-sample criteria are not met (or the artifact changed)."""


@dataclass(frozen=True)
class Criteria:
    """Out-of-sample bars a version must clear to go live (the [ml] config keys of the same names)."""

    min_oos_auc: float = 0.55
    min_oos_signals: int = 50

    @classmethod
    def from_config(cls, ml) -> Criteria:
        return cls(float(ml.min_oos_auc), int(ml.min_oos_signals))


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    status: str
    artifact_path: str
    artifact_sha256: str
    feature_set: Any                      # JSON: the feature spec / names the model reads
    train_start: int                      # ns, the training data range
    train_end: int
    params: dict = field(default_factory=dict)
    in_sample: dict = field(default_factory=dict)
    out_of_sample: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)    # training feature histograms (abidance.ml.drift)
    created_at: int = 0                   # ns
    updated_at: int = 0                   # ns: time of this state
    reason: str = ""                      # why the last change
    author: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def metric(metrics: dict, keys: Iterable[str]):
    """The first of `keys` present in `metrics` (None when none is)."""
    for k in keys:
        if k in metrics and metrics[k] is not None:
            return metrics[k]
    return None


def unmet_criteria(mv: ModelVersion, criteria: Criteria) -> list[str]:
    """Why `mv` may not go live, one item per criterion it misses (empty: it may)."""
    oos = mv.out_of_sample or {}
    problems = []
    auc = metric(oos, AUC_KEYS)
    if not isinstance(auc, (int, float)) or isinstance(auc, bool) or not auc == auc:
        problems.append(f"out-of-sample AUC is missing (metrics have {sorted(oos) or 'nothing'})")
    elif auc < criteria.min_oos_auc:
        problems.append(f"out-of-sample AUC {auc:.4f} < ml.min_oos_auc {criteria.min_oos_auc}")
    signals = metric(oos, SIGNALS_KEYS)
    if not isinstance(signals, (int, float)) or isinstance(signals, bool):
        problems.append(f"out-of-sample signal count is missing (one of {', '.join(SIGNALS_KEYS)})")
    elif signals < criteria.min_oos_signals:
        problems.append(f"out-of-sample signals {signals} < ml.min_oos_signals {criteria.min_oos_signals}")
    return problems




def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=_plain)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{what} cannot be stored as JSON: {exc}") from None


def _plain(value: Any):
    """numpy scalars and arrays, tuples and paths in metrics/params -> JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not set(name) <= NAME_CHARS:
        raise RegistryError(f"model name {name!r} must be 1-64 letters, digits, '.', '-' or '_'")
    return name


def _check_version(version) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2 ** 32:
        raise RegistryError(f"model version must be a whole number >= 1, got {version!r}")
    return version


def _time_ns(value, what: str) -> int:
    try:
        return to_ns(value)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{what} {value!r} is not a time: {exc}") from None


_COLUMNS = schema.BY_NAME["models"].column_names
_SELECT = ("toUnixTimestamp64Nano(ts), name, version, status, artifact_path, artifact_sha256, feature_set, "
           "toUnixTimestamp64Nano(train_start), toUnixTimestamp64Nano(train_end), params, in_sample, "
           "out_of_sample, reference, toUnixTimestamp64Nano(created_at), reason, author")


class ModelRegistry:
    """Model versions in the store, through any clickhouse-connect client."""

    def __init__(self, client, database: str = "abidance", *, criteria: Criteria | None = None,
                 author: str = "", now_ns: Callable[[], int] = time.time_ns):
        self.client = client
        self.database = check_identifier(database)
        self.criteria = criteria or Criteria()
        self.author = author
        self._now_ns = now_ns
        self._last_ns = 0

    @classmethod
    def open(cls, url: str, database: str = "abidance", *, migrate: bool = True, **kwargs) -> ModelRegistry:
        """Connect to the store at `url` (see abidance.store.client.connect); with `migrate`, apply
        pending migrations first (idempotent), so a store from before the registry gets its tables."""
        client = connect(url, database="default" if migrate else database)
        if migrate:
            apply_migrations(client.command, database)
        return cls(client, database, **kwargs)

    def close(self) -> None:
        self.client.close()

    # ---- reading ---------------------------------------------------------------------------------

    def _now(self) -> int:
        # Strictly increasing: the newest row of a version is its state, ties would be ambiguous.
        now = max(int(self._now_ns()), self._last_ns + 1)
        self._last_ns = now
        return now

    def _rows(self, where: str = "", params: dict | None = None) -> list[ModelVersion]:
        latest = (f"SELECT {_SELECT} FROM {self.database}.models ORDER BY name, version, ts DESC "
                  "LIMIT 1 BY name, version")
        sql = f"SELECT * FROM ({latest}){where} ORDER BY name, version"
        out = []
        for r in self.client.query(sql, parameters=params or {}).result_rows:
            out.append(ModelVersion(
                name=r[1], version=int(r[2]), status=r[3], artifact_path=r[4], artifact_sha256=r[5],
                feature_set=json.loads(r[6] or "null"), train_start=int(r[7]), train_end=int(r[8]),
                params=json.loads(r[9] or "{}"), in_sample=json.loads(r[10] or "{}"),
                out_of_sample=json.loads(r[11] or "{}"), reference=json.loads(r[12] or "{}"),
                created_at=int(r[13]), updated_at=int(r[0]), reason=r[14], author=r[15]))
        return out

    def list(self, name: str | None = None, status: str | None = None) -> list[ModelVersion]:
        """Every version (of `name`, with `status`), in name and version order."""
        clauses, params = [], {}
        if name is not None:
            clauses.append("name = {name:String}")
            params["name"] = _check_name(name)
        if status is not None:
            if status not in STATUSES:
                raise RegistryError(f"status {status!r} is not one of {', '.join(STATUSES)}")
            clauses.append("status = {status:String}")
            params["status"] = status
        return self._rows((" WHERE " + " AND ".join(clauses)) if clauses else "", params)

    def get(self, name: str, version: int) -> ModelVersion:
        _check_name(name)
        found = [m for m in self.list(name) if m.version == _check_version(version)]
        if not found:
            known = ", ".join(f"v{m.version}" for m in self.list(name)) or "none"
            raise RegistryError(f"model {name} v{version} is not registered (versions of {name}: {known})")
        return found[0]

    def live(self, name: str) -> ModelVersion | None:
        """The live version of `name`, or None."""
        found = self.list(name, "live")
        return found[-1] if found else None

    def shadows(self, name: str) -> list[ModelVersion]:
        """Versions of `name` in shadow (several challengers may run at once), oldest first."""
        return self.list(name, "shadow")

    def shadow(self, name: str) -> ModelVersion | None:
        """The newest version of `name` in shadow, or None."""
        found = self.shadows(name)
        return found[-1] if found else None

    def by_sha256(self, sha256: str) -> ModelVersion | None:
        """The version whose artifact has this hash (the newest if several), or None."""
        found = [m for m in self.list() if m.artifact_sha256 == sha256]
        return max(found, key=lambda m: m.created_at) if found else None

    def events(self, name: str | None = None, version: int | None = None) -> list[dict]:
        """Every event (of `name` / `version`), oldest first."""
        clauses, params = [], {}
        if name is not None:
            clauses.append("name = {name:String}")
            params["name"] = _check_name(name)
        if version is not None:
            clauses.append("version = {version:UInt32}")
            params["version"] = _check_version(version)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.client.query(
            f"SELECT toUnixTimestamp64Nano(ts), event_id, name, version, event, from_status, to_status, reason, "
            f"author, details FROM {self.database}.model_events{where} ORDER BY ts, event_id",
            parameters=params).result_rows
        return [{"ts": int(r[0]), "event_id": r[1], "name": r[2], "version": int(r[3]), "event": r[4],
                 "from_status": r[5], "to_status": r[6], "reason": r[7], "author": r[8],
                 "details": json.loads(r[9] or "{}")} for r in rows]

    # ---- writing ---------------------------------------------------------------------------------

    def _insert(self, table: str, rows: list[tuple]) -> None:
        self.client.insert_arrow(f"{self.database}.{table}", to_arrow(schema.BY_NAME[table], rows))

    def _state_row(self, mv: ModelVersion) -> tuple:
        return (mv.updated_at, mv.name, mv.version, mv.status, mv.artifact_path, mv.artifact_sha256,
                _json(mv.feature_set, "feature_set"), mv.train_start, mv.train_end, _json(mv.params, "params"),
                _json(mv.in_sample, "in_sample"), _json(mv.out_of_sample, "out_of_sample"),
                _json(mv.reference, "reference"), mv.created_at, mv.reason, mv.author)

    def _event_row(self, ts: int, mv: ModelVersion, event: str, from_status: str, reason: str,
                   details: dict | None, author: str, step: int = 0) -> tuple:
        # The events of one change share its time; `step` keeps their order (events sort by ts, event_id).
        return (ts, f"{ts}-{step}-{secrets.token_hex(4)}", mv.name, mv.version, event, from_status, mv.status,
                reason, author, _json(details or {}, "details"))

    def _change(self, changes: list[tuple[ModelVersion, str, str, dict | None]], author: str) -> None:
        """Write the new states, then one event each: [(new state, event, previous status, details)]."""
        self._insert("models", [self._state_row(mv) for mv, _, _, _ in changes])
        self._insert("model_events", [self._event_row(mv.updated_at, mv, event, prev, mv.reason, details, author, i)
                                      for i, (mv, event, prev, details) in enumerate(changes)])

    def record_event(self, name: str, version: int, event: str, reason: str = "", details: dict | None = None,
                     author: str | None = None) -> dict:
        """An event that changes no status (a retraining step, a check): appended to model_events.
        Version 0 is the model name as a whole (e.g. a retraining run before any version exists)."""
        if not isinstance(event, str) or not event:
            raise RegistryError("an event needs a name (e.g. 'retrain_compared')")
        if version == 0:
            mv = ModelVersion(_check_name(name), 0, "", "", "", None, 0, 0)
        else:
            mv = self.get(name, version)
        ts = self._now()
        row = self._event_row(ts, mv, event, mv.status, reason, details, author if author is not None else self.author)
        self._insert("model_events", [row])
        return {"ts": ts, "event_id": row[1], "event": event}

    def register(self, name: str, artifact_path: str | Path, *, feature_set: Any, train_start, train_end,
                 params: dict | None = None, in_sample: dict | None = None, out_of_sample: dict | None = None,
                 reference: dict | None = None, expected_sha256: str | None = None, version: int | None = None,
                 reason: str = "registered", author: str | None = None) -> ModelVersion:
        """Add a version as a candidate. The artifact's sha256 is computed here; `expected_sha256`
        (e.g. what save_model returned) must match it. `version` defaults to the next free one."""
        _check_name(name)
        path = Path(artifact_path).expanduser()
        if not path.is_file():
            raise RegistryError(f"artifact {path} of model {name} does not exist or is not a file")
        digest = file_sha256(path)
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            raise RegistryError(f"artifact {path} has sha256 {digest}, not the expected {expected_sha256}: "
                                "the file changed since it was saved")
        start, end = _time_ns(train_start, "train_start"), _time_ns(train_end, "train_end")
        if end <= start:
            raise RegistryError(f"training data range is empty or reversed: train_end {end} <= train_start {start}")
        for what, value in (("params", params), ("in_sample", in_sample), ("out_of_sample", out_of_sample),
                            ("reference", reference)):
            if value is not None and not isinstance(value, dict):
                raise RegistryError(f"{what} must be a dict, got {type(value).__name__}")
        existing = {m.version for m in self.list(name)}
        if version is None:
            version = max(existing, default=0) + 1
        elif _check_version(version) in existing:
            raise RegistryError(f"model {name} v{version} is already registered")
        now = self._now()
        mv = ModelVersion(name, version, "candidate", str(path.resolve()), digest, feature_set, start, end,
                          dict(params or {}), dict(in_sample or {}), dict(out_of_sample or {}), dict(reference or {}),
                          now, now, reason, author if author is not None else self.author)
        self._change([(mv, "registered", "", {"artifact_sha256": digest})], mv.author)
        return mv

    def _moved(self, mv: ModelVersion, status: str, reason: str, author: str, now: int) -> ModelVersion:
        return replace(mv, status=status, reason=reason, author=author, updated_at=now)

    def promote(self, name: str, version: int, *, reason: str = "", force: bool = False,
                author: str | None = None) -> ModelVersion:
        """One step up: candidate -> shadow, shadow -> live (the previous live version is retired).
        To live only when the out-of-sample criteria are met, or with `force` and a reason."""
        author = author if author is not None else self.author
        mv = self.get(name, version)
        if mv.status == "candidate":
            now = self._now()
            new = self._moved(mv, "shadow", reason or "promoted to shadow", author, now)
            self._change([(new, "promoted", "candidate", None)], author)
            return new
        if mv.status != "shadow":
            raise RegistryError(f"{mv.label} is {mv.status}: only a candidate (-> shadow) or a shadow version "
                                "(-> live) can be promoted" + ("; register it again to reuse it"
                                                               if mv.status == "retired" else ""))
        self._verify_artifact(mv)
        problems = unmet_criteria(mv, self.criteria)
        details: dict = {"criteria": {"min_oos_auc": self.criteria.min_oos_auc,
                                      "min_oos_signals": self.criteria.min_oos_signals}}
        if problems and not force:
            raise PromotionRefused(f"{mv.label} not promoted to live: " + "; ".join(problems)
                                   + " (use force with a reason to override)")
        if problems:
            if not reason.strip():
                raise PromotionRefused(f"{mv.label}: a forced promotion needs a reason (it is recorded)")
            details.update(forced=True, unmet=problems)
        now = self._now()
        changes = []
        for old in self.list(name, "live"):
            retired = self._moved(old, "retired", f"replaced by v{mv.version}", author, now)
            changes.append((retired, "retired", "live", {"replaced_by": mv.version}))
        new = self._moved(mv, "live", reason or "promoted to live", author, now)
        changes.append((new, "promoted", "shadow", details))
        self._change(changes, author)
        return new

    def demote(self, name: str, version: int, *, reason: str, author: str | None = None,
               details: dict | None = None) -> ModelVersion:
        """live -> shadow (it keeps predicting, no longer trades); the reason is required."""
        if not isinstance(reason, str) or not reason.strip():
            raise RegistryError("a demotion needs a reason (it is recorded)")
        author = author if author is not None else self.author
        mv = self.get(name, version)
        if mv.status != "live":
            raise RegistryError(f"{mv.label} is {mv.status}: only a live version can be demoted")
        new = self._moved(mv, "shadow", reason, author, self._now())
        self._change([(new, "demoted", "live", details)], author)
        return new

    def retire(self, name: str, version: int, *, reason: str, author: str | None = None) -> ModelVersion:
        """Any status -> retired (kept for the record, never run again)."""
        if not isinstance(reason, str) or not reason.strip():
            raise RegistryError("retiring a version needs a reason (it is recorded)")
        author = author if author is not None else self.author
        mv = self.get(name, version)
        if mv.status == "retired":
            raise RegistryError(f"{mv.label} is already retired")
        new = self._moved(mv, "retired", reason, author, self._now())
        self._change([(new, "retired", mv.status, None)], author)
        return new

    def _verify_artifact(self, mv: ModelVersion) -> None:
        path = Path(mv.artifact_path)
        if not path.is_file():
            raise PromotionRefused(f"{mv.label}: artifact {path} is missing")
        digest = file_sha256(path)
        if digest != mv.artifact_sha256:
            raise PromotionRefused(f"{mv.label}: artifact {path} has sha256 {digest}, registered "
                                   f"{mv.artifact_sha256}: the file changed since registration")
