"""SQLite results store of a Table-1 sweep (paper §4.4, Table 1).

``DIR/results.sqlite`` holds one row per (model, seed) with its coordinate
MSEs (paper eqs. 5–7), label accuracies and standard metrics, plus one row
per model with the resolved configuration it was trained with.  It is what
makes ``welavae reproduce`` resumable: a seed is finished once its row says
``done`` or ``diverged`` under the model's current config hash.

Tables (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)::

    models(model PK, config_hash, config_json, beta, gamma, label_dim,
           latent_dim, regulariser, ord, gamma_target)
    results(model, seed, config_hash, status, diverged_epoch, epochs, seconds,
            polar_mse, polar_channels, polar_inverted,
            cartesian_mse, cartesian_channels, cartesian_inverted,
            acc_angle, acc_distance, metrics_json, error, updated_at, environment, gamma,
            PK(model, seed))

``gamma`` is NULL for models without labels and ``label_dim`` NULL when 0;
``models.gamma_target`` is the target of ``--gamma auto`` (its ``gamma`` the start), NULL for a fixed γ;
``results.gamma`` the γ the seed ended with (found by ``--gamma auto``, else the fixed one);
``ord`` is the registration order (Table 1's row order).  ``status`` is one
of ``done``, ``diverged`` (non-finite loss; its MSEs are NULL) or ``failed``
(the seed's job raised; retried on the next run; ``error`` holds
``Type: message`` on its first line, then the traceback).  The ``*_channels`` / ``*_inverted``
columns hold JSON (e.g. ``[0, 1]``, ``[false, true]``); ``metrics_json`` the
standard metrics dict ``{"cartesian": {"mig": …}, "polar": {…}}``;
``environment`` the training run's device, TF32 and software versions
(:func:`welavae.train.platform.environment_record`, a list: one record per
device or software the run was trained or resumed on).  SQLite stores a NaN
as NULL.  A file written before ``environment`` existed gains the column
(NULL) when opened; older welavae versions read files with it unchanged.

Crash safety: journal mode WAL, one transaction per :meth:`ResultsStore.record`
call.  A writer killed with SIGKILL mid-transaction leaves uncommitted WAL
frames that the next open ignores, so the file never corrupts and every
committed batch survives; that holds for any ``synchronous`` setting in WAL
mode.  We choose ``synchronous=FULL`` so that a committed batch also survives
a power cut or OS crash (``NORMAL`` may roll the last commits back there):
the price is one fsync per commit, and the sweep commits once per finished
training job (minutes of GPU/CPU time), so it costs nothing measurable.
The driver process is the only writer (the results folder is locked,
:mod:`welavae.lock`); readers (a notebook) may open the file at any time,
even while it is being created: the schema is read inside ``BEGIN IMMEDIATE``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import sqlite3
from pathlib import Path

import numpy as np

__all__ = ["ResultsStore", "SCHEMA_VERSION", "RESULT_COLUMNS", "MODEL_COLUMNS", "STATUSES"]

SCHEMA_VERSION = 1
STATUSES = ("done", "diverged", "failed")

MODEL_COLUMNS = ("model", "config_hash", "config_json", "beta", "gamma", "label_dim", "latent_dim",
                 "regulariser", "ord", "gamma_target")
RESULT_COLUMNS = (
    "model", "seed", "config_hash", "status", "diverged_epoch", "epochs", "seconds",
    "polar_mse", "polar_channels", "polar_inverted",
    "cartesian_mse", "cartesian_channels", "cartesian_inverted",
    "acc_angle", "acc_distance", "metrics_json", "error", "updated_at", "environment", "gamma",
)
# Columns holding JSON text: a list / tuple / dict given for them is encoded by record().
_JSON_COLUMNS = ("polar_channels", "polar_inverted", "cartesian_channels", "cartesian_inverted", "metrics_json",
                 "environment")

_SCHEMA = f"""
CREATE TABLE models (
    model TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    config_json TEXT,
    beta REAL,
    gamma REAL,
    label_dim INTEGER,
    latent_dim INTEGER,
    regulariser TEXT,
    ord INTEGER NOT NULL UNIQUE,
    gamma_target TEXT
);
CREATE TABLE results (
    model TEXT NOT NULL REFERENCES models(model),
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK(status IN ({", ".join(repr(s) for s in STATUSES)})),
    diverged_epoch INTEGER,
    epochs INTEGER,
    seconds REAL,
    polar_mse REAL,
    polar_channels TEXT,
    polar_inverted TEXT,
    cartesian_mse REAL,
    cartesian_channels TEXT,
    cartesian_inverted TEXT,
    acc_angle REAL,
    acc_distance REAL,
    metrics_json TEXT,
    error TEXT,
    updated_at TEXT,
    environment TEXT,
    gamma REAL,
    PRIMARY KEY (model, seed)
);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _plain(value, column: str):
    """A value sqlite3 can bind: numpy scalars → Python, JSON columns → text, NaN → NULL."""
    if isinstance(value, np.generic):
        value = value.item()
    if column in _JSON_COLUMNS and value is not None and not isinstance(value, str):
        value = json.dumps(value, default=lambda o: o.item() if isinstance(o, np.generic) else o.tolist())
    if isinstance(value, float) and math.isnan(value):
        value = None
    return value


#: Columns added to schema version 1 after its first release: (table, name, SQL type), added as NULL when missing.
_ADDED_COLUMNS = (("results", "environment", "TEXT"), ("results", "gamma", "REAL"), ("models", "gamma_target", "TEXT"))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Give tables written by an earlier welavae the columns added since (backward compatible)."""
    for table in {t for t, _, _ in _ADDED_COLUMNS}:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for name, sql_type in ((n, s) for t, n, s in _ADDED_COLUMNS if t == table):
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


class ResultsStore:
    """Per-(model, seed) results of a sweep in one SQLite file (WAL, one writer).

    ``ResultsStore(path)`` opens or creates ``path`` (usually
    ``DIR/results.sqlite``).  A file that is not a SQLite database, is damaged,
    or was written by an unknown schema version raises one ``ValueError``
    naming the file.  Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly one transaction.
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise ValueError(f"cannot open the results database {self.path}: {e}") from None
        try:
            self._open(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise ValueError(f"{self.path} is not a readable welavae results database ({e}); "
                             "move it aside or choose another output directory") from None
        except ValueError:
            conn.close()
            raise
        self._conn = conn

    def _open(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")  # the first read of the header: "file is not a database" here
        conn.execute("PRAGMA synchronous=FULL")  # see the module docstring for why FULL
        conn.execute("PRAGMA foreign_keys=ON")
        check = [r[0] for r in conn.execute("PRAGMA quick_check")]
        if check != ["ok"]:
            raise sqlite3.DatabaseError("integrity check failed: " + "; ".join(map(str, check[:3])))
        # The schema is read inside the write transaction: two stores opened at once on a new file
        # would otherwise both see version 0 and the second would try to create the tables again.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise ValueError(f"{self.path} is a SQLite database but not a welavae results store "
                                     f"(it has {tables} other schema objects and no welavae schema version)")
                # Statement by statement: executescript() would COMMIT first and break the transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise ValueError(f"{self.path} has results schema version {version}; this welavae reads "
                                 f"version {SCHEMA_VERSION}")
            _add_missing_columns(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ----------------------------------------------------------- lifecycle ---
    def close(self) -> None:
        """Close the connection (idempotent); the last close folds the WAL back into the file."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"the results store {self.path} is closed")
        return self._conn

    # -------------------------------------------------------------- writes ---
    def register_model(self, model: str, config_hash: str, config_json: str, *, beta: float,
                       gamma: float | None, label_dim: int | None, latent_dim: int,
                       regulariser: str, gamma_target: str | None = None) -> None:
        """Insert or update one model row; its registration order (``ord``) is kept.

        Raises ``ValueError`` if ``model`` is already stored under another
        ``config_hash``: its seeds would not be comparable with the new ones.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            old = conn.execute("SELECT config_hash FROM models WHERE model = ?", (model,)).fetchone()
            if old is not None and old["config_hash"] != config_hash:
                raise ValueError(
                    f"{self.path.parent} holds results of another configuration for model {model!r} "
                    f"(config hash {old['config_hash']}, now {config_hash}); use a new output directory "
                    "or move the old one aside")
            values = dict(config_hash=config_hash, config_json=config_json, beta=beta,
                          gamma=gamma, label_dim=label_dim or None, latent_dim=latent_dim,
                          regulariser=regulariser, gamma_target=gamma_target)
            values = {k: _plain(v, k) for k, v in values.items()}
            if old is None:
                ord_ = conn.execute("SELECT coalesce(max(ord), -1) + 1 FROM models").fetchone()[0]
                conn.execute(f"INSERT INTO models (model, {', '.join(values)}, ord) "
                             f"VALUES (?, {', '.join('?' * len(values))}, ?)", (model, *values.values(), ord_))
            else:
                conn.execute(f"UPDATE models SET {', '.join(f'{k} = ?' for k in values)} WHERE model = ?",
                             (*values.values(), model))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def record(self, rows: list[dict]) -> None:
        """Insert or replace many (model, seed) rows in ONE transaction: all of them or none.

        rows: dicts keyed by :data:`RESULT_COLUMNS`; ``model``, ``seed``,
        ``config_hash`` and ``status`` are required, the rest default to NULL
        (``updated_at`` to now, UTC).  JSON columns accept lists / dicts.
        A row that violates the schema (unknown status, unregistered model, …)
        raises ``ValueError`` and leaves the database as it was.
        """
        rows = list(rows)
        prepared = []
        for i, row in enumerate(rows):
            unknown = set(row) - set(RESULT_COLUMNS)
            if unknown:
                raise ValueError(f"results row {i} has unknown columns {sorted(unknown)}; "
                                 f"expected a subset of {list(RESULT_COLUMNS)}")
            missing = [c for c in ("model", "seed", "config_hash", "status") if row.get(c) is None]
            if missing:
                raise ValueError(f"results row {i} lacks {missing}")
            full = {c: _plain(row.get(c), c) for c in RESULT_COLUMNS}
            if full["updated_at"] is None:
                full["updated_at"] = _now()
            prepared.append(tuple(full[c] for c in RESULT_COLUMNS))
        cols = ", ".join(RESULT_COLUMNS)
        update = ", ".join(f"{c} = excluded.{c}" for c in RESULT_COLUMNS if c not in ("model", "seed"))
        sql = (f"INSERT INTO results ({cols}) VALUES ({', '.join('?' * len(RESULT_COLUMNS))}) "
               f"ON CONFLICT(model, seed) DO UPDATE SET {update}")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        i = -1
        try:
            for i, values in enumerate(prepared):  # noqa: B007 (i names the failed row below)
                conn.execute(sql, values)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            conn.execute("ROLLBACK")
            row = rows[i] if 0 <= i < len(rows) else {}
            raise ValueError(f"{self.path}: results row {i} (model={row.get('model')!r}, seed={row.get('seed')!r}, "
                             f"status={row.get('status')!r}) was rejected ({e}); nothing of this batch of "
                             f"{len(rows)} rows was written (status must be one of {list(STATUSES)} and the "
                             "model registered first)") from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --------------------------------------------------------------- reads ---
    def finished(self, model: str, config_hash: str) -> set[int]:
        """Seeds of ``model`` with status done or diverged under ``config_hash`` (failed ones are retried)."""
        cur = self.conn.execute(
            "SELECT seed FROM results WHERE model = ? AND config_hash = ? AND status IN ('done', 'diverged')",
            (model, config_hash))
        return {int(r[0]) for r in cur}

    def rows(self, model: str | None = None) -> list[dict]:
        """Results rows as dicts (keys :data:`RESULT_COLUMNS`, JSON columns as text), by model order then seed."""
        sql = ("SELECT r.* FROM results r JOIN models m ON m.model = r.model "
               + ("WHERE r.model = ? " if model is not None else "") + "ORDER BY m.ord, r.seed")
        return [dict(r) for r in self.conn.execute(sql, (model,) if model is not None else ())]

    def models(self) -> list[dict]:
        """Model rows as dicts (keys :data:`MODEL_COLUMNS`) in registration order."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM models ORDER BY ord")]

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"
