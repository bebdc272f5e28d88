"""What a store user may run: ClickHouse parses every statement, the guard reads its syntax tree.

chdb runs with clickhouse-local's rights: `file()` reads any file the store's OS user can read,
`url()` makes requests, `INTO OUTFILE` writes files, `CREATE TABLE ... ENGINE = File(...)` does
both. The served store therefore checks every statement of every client before it runs, by
asking ClickHouse itself, never by matching SQL text:

1. `SELECT formatQuerySingleLine({q:String})` parses the text with ClickHouse's own parser
   (the text travels as a bound parameter, never executed). A syntax error or a second
   statement (`SELECT 1; SELECT * FROM file(...)`: chdb runs every statement it is given) is
   refused. Comments, case, whitespace and quoting are the parser's business, not ours.
2. `EXPLAIN AST <statement>` (safe now: one statement, and EXPLAIN AST only parses) gives the
   syntax tree, which the guard walks:
   - the statement kind must be one the user's role may run (`ROLES`);
   - no function anywhere may be a table function other than a few pure generators
     (`numbers`, `zeros`, `values`, ...): the deny list is every name in this engine's own
     `system.table_functions`, so a table function added by a later ClickHouse is refused too;
     scalar functions that reach outside (`file`, `catboostEvaluate`, ...) are refused;
   - no `INTO OUTFILE` / `FROM INFILE` (a literal directly under the statement), no
     `INSERT INTO FUNCTION`, no `SETTINGS` clause (settings come as request parameters, where
     `check_settings` allows only harmless ones; limits are set by the server last);
   - an INSERT goes into a table the role may write; a CREATE makes a database or a
     MergeTree-family table (the node's migrations); an ALTER only changes TTLs or adds columns.

Verdicts are cached per (role, user, statement): clickhouse-connect sends the same parameterised
statements again and again. A statement with an `Identifier` parameter is checked with its values.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

# What each role may run (root node kinds of ClickHouse's EXPLAIN AST).
READ_KINDS = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "DescribeQuery",
                        "Explain", "UseQuery", "Set", "CheckQuery"})
READ_PREFIXES = ("Show", "Exists")
ROLES = ("reader", "operator", "writer")
# The operator (the dashboard) reads, and writes only what an operator writes.
OPERATOR_TABLES = frozenset({"commands", "config_versions"})
ALTER_COMMANDS = frozenset({"MODIFY_TTL", "REMOVE_TTL", "ADD_COLUMN"})
# Table functions that only generate values in memory; every other one is refused.
PURE_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series",
                                  "generateseries", "values", "null", "view", "primes", "generaterandom"})
# Scalar functions that reach outside the store (files, models) or its process.
OUTSIDE_FUNCTIONS = frozenset({"file", "catboostevaluate", "addresstoline", "addresstolinewithinlines",
                               "addresstosymbol", "demangle", "logtrace", "getclienthttpheader"})
_ENGINE_OK = re.compile(r"^(\w*MergeTree|Atomic)$")

# Settings a client may send (request parameters or SET); anything else is refused. The limits
# (max_execution_time, max_memory_usage, readonly-like switches) are the server's and never here.
ALLOWED_SETTINGS = frozenset({
    "max_threads", "max_block_size", "preferred_block_size_bytes", "join_use_nulls", "session_timezone",
    "insert_deduplication_token", "insert_deduplicate", "async_insert", "wait_for_async_insert",
    "cast_string_to_dynamic_use_inference", "date_time_input_format", "date_time_output_format",
    "use_query_cache", "optimize_read_in_order", "final", "do_not_merge_across_partitions_select_final",
    "allow_experimental_analyzer", "enable_analyzer", "mutations_sync", "send_logs_level",
})
# The writer's inserts may also shape their blocks (a backfill of history spans many partitions).
WRITER_SETTINGS = frozenset({"max_partitions_per_insert_block", "max_insert_block_size", "min_insert_block_size_rows",
                             "min_insert_block_size_bytes"})
_SETTING_PREFIXES = ("input_format_", "output_format_", "format_csv_", "format_tsv_", "date_time_")
_SETTING_WORDS_REFUSED = ("schema", "path", "file", "template", "max_", "_timeout", "allow_", "readonly")


class Refused(Exception):
    """A statement or setting the user's role may not use; `code`/`name` as ClickHouse's ACCESS_DENIED."""

    code, name = 497, "ACCESS_DENIED"


def setting_allowed(name: str, role: str = "reader") -> bool:
    low = name.lower()
    if low in ALLOWED_SETTINGS or (role == "writer" and low in WRITER_SETTINGS):
        return True
    return low.startswith(_SETTING_PREFIXES) and not any(w in low for w in _SETTING_WORDS_REFUSED)


def check_settings(names, user: str, role: str = "reader") -> None:
    for name in names:
        if not setting_allowed(name, role):
            raise Refused(f"{user}: setting {name!r} may not be changed on the served store (limits are the "
                          "server's; allowed: format, date-time, block-size and insert-deduplication settings)")


@dataclass
class Node:
    kind: str
    label: str
    depth: int
    children: list


def parse_tree(text: str) -> Node:
    """EXPLAIN AST's indented text -> a tree (one space of indent per level)."""
    root = Node("", "", -1, [])
    stack = [root]
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        label = line.strip()
        node = Node(label.split(" ", 1)[0], label, depth, [])
        while stack[-1].depth >= depth:
            stack.pop()
        stack[-1].children.append(node)
        stack.append(node)
    if len(root.children) != 1:
        raise Refused("the statement could not be read as one statement")
    return root.children[0]


def _name(node: Node) -> str:
    """The function name of a `Function name ...` node, lowercased."""
    parts = node.label.split(" ")
    return parts[1].lower() if len(parts) > 1 else ""


def _tsv_escape(text: str) -> str:
    """A query parameter's value as ClickHouse parses it (TSV escaping)."""
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\0", "\\0"))


class Guard:
    """Checks statements against a role using the engine's own parser (see the module docstring).

    `engine_query(sql, params)` runs one statement on the store's chdb session and returns its
    TSVRaw text (the caller holds whatever lock the engine needs).
    """

    def __init__(self, engine_query, cache_size: int = 4096):
        self._query = engine_query
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = cache_size
        names = engine_query("SELECT name FROM system.table_functions", None)
        self.table_functions = frozenset(n.strip().lower() for n in names.splitlines() if n.strip())

    def check(self, sql: str, params: dict | None, role: str, user: str, database: str = "") -> Node:
        """Refused unless `role` may run `sql`; returns the statement's syntax tree root."""
        ident = tuple(sorted((params or {}).items())) if "Identifier}" in sql else ()
        key = (role, user, database, sql, ident)
        with self._lock:                   # the front end's pool threads share the cache
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:
            if isinstance(hit, str):
                raise Refused(hit)                   # a new exception: a re-raised one grows its traceback
            return hit
        try:
            root = self._check(sql, params, role, user, database)
        except Refused as exc:
            self._remember(key, str(exc))
            raise
        self._remember(key, root)
        return root

    def _remember(self, key, value) -> None:
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _check(self, sql: str, params: dict | None, role: str, user: str, database: str) -> Node:
        if role not in ROLES:
            raise Refused(f"{user}: unknown role {role!r}")
        # 1. one statement, as ClickHouse's parser reads it (a syntax error is the engine's own message)
        self._query("SELECT formatQuerySingleLine({q:String}) FORMAT Null", {"q": _tsv_escape(sql)})
        # 2. its syntax tree
        root = parse_tree(self._query(f"EXPLAIN AST {sql}", params))
        kind = root.kind
        if kind == "InsertQuery" and any(c.kind in ("Function", "Literal") for c in root.children):
            raise Refused(f"{user}: INSERT INTO FUNCTION and INSERT FROM INFILE are not allowed")
        if kind in READ_KINDS or kind.startswith(READ_PREFIXES):
            pass
        elif kind == "InsertQuery" and role in ("operator", "writer"):
            self._check_insert(root, role, user, database)
        elif kind in ("CreateQuery", "AlterQuery") and role == "writer":
            self._check_ddl(root, user)
        elif kind == "OptimizeQuery" and role == "writer":
            pass                                      # merges the node's own tables' parts
        else:
            what = "writes" if kind in ("InsertQuery", "CreateQuery", "AlterQuery") else f"{kind} statements"
            raise Refused(f"{user}: {what} are not allowed for the {role} role on the served store")
        self._walk(root, user, inside_storage=False)
        return root

    def _walk(self, node: Node, user: str, inside_storage: bool) -> None:
        for child in node.children:
            storage = inside_storage or child.kind == "Storage"
            if child.kind == "Literal" and node.kind in ("SelectWithUnionQuery", "InsertQuery"):
                raise Refused(f"{user}: INTO OUTFILE / FROM INFILE (files of the store's host) are not allowed")
            if child.kind == "Set" and not storage:
                raise Refused(f"{user}: a SETTINGS clause is not allowed on the served store: send settings as "
                              "request parameters (limits are the server's)")
            if child.kind in ("Function", "FunctionWithKeyValueArguments"):
                name = _name(child)
                if name in OUTSIDE_FUNCTIONS or (name in self.table_functions and name not in PURE_TABLE_FUNCTIONS):
                    raise Refused(f"{user}: function {name}() reaches outside the store (files, network, other "
                                  "servers) and is not allowed on the served store")
            self._walk(child, user, storage)

    def _check_insert(self, root: Node, role: str, user: str, database: str) -> None:
        idents = []
        for child in root.children:
            if child.kind != "Identifier":
                break
            idents.append(child.label.split(" ", 1)[1] if " " in child.label else "")
        if not idents or len(idents) > 2:
            raise Refused(f"{user}: INSERT must name a table")
        db, table = (idents if len(idents) == 2 else ((database or "default"), idents[0]))
        if "." in table:
            db, table = table.split(".", 1)
        if db.lower() in ("system", "information_schema"):
            raise Refused(f"{user}: writes to {db}.{table} are not allowed")
        if role == "operator" and table not in OPERATOR_TABLES:
            raise Refused(f"{user}: the operator role may insert only into {', '.join(sorted(OPERATOR_TABLES))}, "
                          f"not {db}.{table}")

    def _check_ddl(self, root: Node, user: str) -> None:
        if root.kind == "AlterQuery":
            for child in root.children:
                if child.kind == "ExpressionList":
                    for cmd in child.children:
                        op = cmd.label.split(" ")[1] if " " in cmd.label else ""
                        if cmd.kind != "AlterCommand" or op not in ALTER_COMMANDS:
                            raise Refused(f"{user}: ALTER {op or cmd.kind} is not allowed (only "
                                          f"{', '.join(sorted(ALTER_COMMANDS))}: the node's migrations)")
            return
        kinds = {c.kind for c in root.children}
        if kinds - {"Identifier", "Columns", "Storage"}:
            raise Refused(f"{user}: only CREATE DATABASE and CREATE TABLE ... ENGINE = *MergeTree are allowed "
                          "(the node's migrations)")
        if "Columns" in kinds and "Storage" not in kinds:
            raise Refused(f"{user}: CREATE TABLE must name its engine (the MergeTree family)")
        for child in root.children:
            if child.kind == "Storage":
                engine = next((p for p in child.children if p.kind == "Function"), None)
                name = engine.label.split(" ")[1] if engine is not None and " " in engine.label else ""
                if not _ENGINE_OK.match(name):
                    raise Refused(f"{user}: table engine {name or '(none)'} is not allowed (only the MergeTree "
                                  "family)")
