#!/usr/bin/env python3
"""Run every SQL and shell example of README.md and docs/*.md, as written, against the project's
fixture, and compare what they print with what the page shows.

The convention (what a page may contain and how this runner reads it) is documented in
docs/README.md, "Examples that run"; keep the two in step. In short:

* ```sql blocks run statement by statement on one connection per page (a DBA's psql session:
  psql variables `:'name'`, `:name` and `\\gset` work); `-- => text` lines after a statement are
  its expected result (rows rendered as psql's text, columns joined by ` | `, `NULL` for null, or
  `ERROR <SQLSTATE>: message`);
* ```sh blocks run in bash (`set -eo pipefail`), one after the other, exported and assigned
  variables carried from block to block of the page; a fenced block that directly follows one
  (```json, ```text or no language) is its expected standard output;
* in expected text `…` and `...` match anything; whitespace outside JSON strings is ignored;
* `<!-- docs-test: skip: <reason> -->` before a block: illustrative, not run (listed as such);
  `<!-- docs-test: background -->` before a sh block: it starts a server; it runs in the
  background until the page ends, and the next block waits for `$API/health/live`;
* a sh block that installs into the system or runs the suites (`make demo`, `cargo pgrx install`,
  `cargo test`, ...) is never run: unmarked, it fails.

Each page runs on a fresh database cloned from the fixture, with its own front when a sh block
needs `$API`. Prints one line per block and ends with `docs: N passed, N failed`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import postgres
from psycopg.types.string import TextLoader

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/odoo19_mini.sql"
RUNNABLE = {"sql": "sql", "sh": "sh", "bash": "sh", "shell": "sh"}
OUTPUT_LANGS = {"", "json", "text", "output", "console"}
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(skip|background)\s*(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+)\s*([A-Za-z0-9_+-]*)(.*)$")
BLOCK_TIMEOUT_S = 120


@dataclass
class Block:
    page: str
    line: int
    lang: str  # "sql", "sh" or an output/other language
    code: str
    marker: str | None = None  # "skip" or "background"
    reason: str = ""
    expected: str | None = None  # the output block that follows
    expected_lang: str = ""


def parse_page(path: Path) -> list[Block]:
    """Fenced blocks of a Markdown page, with their markers and output blocks attached."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = str(path.relative_to(ROOT))
    blocks: list[tuple[Block, int, int]] = []  # (block, its opening line, the line after it)
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(2), m.group(3).lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # closing fence
        block = Block(rel, start + 1, lang, "\n".join(body) + "\n")
        # a marker comment on the closest non-blank line before the fence
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (mk := MARKER.match(lines[j])):
            block.marker, block.reason = mk.group(1), mk.group(2) or ""
        blocks.append((block, start, i))
    out: list[Block] = []
    prev: Block | None = None  # the previous block when it is runnable
    prev_end = 0
    for block, start, end in blocks:
        if (
            prev is not None
            and block.lang in OUTPUT_LANGS
            and block.marker is None
            and all(not ln.strip() for ln in lines[prev_end:start])
        ):
            prev.expected, prev.expected_lang = block.code, block.lang
            prev = None
        else:
            out.append(block)
            prev = block if block.lang in RUNNABLE else None
        prev_end = end
    return out


# ---------------------------------------------------------------- comparison


def strip_outside_strings(text: str) -> str:
    """Remove whitespace that is not inside a double-quoted string (JSON-insensitive layout)."""
    out, in_str, esc = [], False, False
    for ch in text:
        if in_str:
            out.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            out.append(ch)
        elif not ch.isspace():
            out.append(ch)
    return "".join(out)


def normalise(text: str, layout_free: bool) -> str:
    if layout_free:
        return strip_outside_strings(text)
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(ln for ln in lines if ln)


def key_order(expected: str) -> dict[str, int]:
    """Object keys in the order the page shows them."""
    order: dict[str, int] = {}
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:', expected):
        order.setdefault(json.loads(f'"{m.group(1)}"'), len(order))
    return order


def reorder(value, order: dict[str, int]):
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (order.get(k, len(order)), k))
        return {k: reorder(value[k], order) for k in keys}
    if isinstance(value, list):
        return [reorder(v, order) for v in value]
    return value


def json_in_page_order(actual: str, expected: str) -> str:
    """Every JSON object or array in `actual`, re-serialised with its keys in the order the page
    shows them (the front writes them sorted, the database by length): key order carries no
    meaning, so the page may show the natural one."""
    order = key_order(expected)
    dec = json.JSONDecoder()
    out, i = [], 0
    while i < len(actual):
        if actual[i] in "{[":
            try:
                value, end = dec.raw_decode(actual, i)
            except ValueError:
                out.append(actual[i])
                i += 1
                continue
            out.append(json.dumps(reorder(value, order), ensure_ascii=False, separators=(",", ":")))
            i = end
        else:
            out.append(actual[i])
            i += 1
    return "".join(out)


def matches(expected: str, actual: str, layout_free: bool) -> bool:
    if layout_free:
        actual = json_in_page_order(actual, expected)
    exp, act = normalise(expected, layout_free), normalise(actual, layout_free)
    parts = re.split(r"…|\.\.\.", exp)
    pattern = ".*?".join(re.escape(p) for p in parts)
    return re.fullmatch(pattern, act, re.DOTALL) is not None


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


# ---------------------------------------------------------------- SQL


def split_sql(code: str) -> list[tuple[str, bool, str]]:
    """(statement, ends_with_gset, trailer) triples; the trailer is the text after the statement
    up to the next one (comments), where `-- =>` lines give the expected result."""
    spans: list[list] = []  # [start, end_of_text, end_after_terminator, gset]
    start = None
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("--", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
            continue
        if code.startswith("/*", i):
            j = code.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if code[j] == c:
                    if j + 1 < n and code[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif c == "$" and (m := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", code[i:])):
            tag = m.group(0)
            j = code.find(tag, i + len(tag))
            i = n if j < 0 else j + len(tag)
        elif c == ";":
            spans.append([start, i, i + 1, False])
            start = None
            i += 1
        elif code.startswith("\\gset", i):
            spans.append([start, i, i + 5, True])
            start = None
            i += 5
        else:
            i += 1
    if start is not None:
        spans.append([start, n, n, False])
    result = []
    for k, (s, e, after, gset) in enumerate(spans):
        nxt = spans[k + 1][0] if k + 1 < len(spans) else n
        result.append((code[s:e].strip(), gset, code[after:nxt]))
    return result


def expected_of(trailer: str) -> str | None:
    exp = [m.group(1) for m in re.finditer(r"--\s*=>[ \t]?([^\n]*)", trailer)]
    return "\n".join(exp) if exp else None


def interpolate(stmt: str, variables: dict[str, str]) -> str:
    """psql's `:'name'` (literal), `:"name"` (identifier) and `:name` (raw), for known names."""

    def lit(m):
        name = m.group(2)
        if name not in variables:
            return m.group(0)
        v = variables[name]
        if m.group(1) == "'":
            return "'" + v.replace("'", "''") + "'"
        if m.group(1) == '"':
            return '"' + v.replace('"', '""') + '"'
        return v

    return re.sub(r"(?<!:):(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1", lit, stmt)


def render_rows(cur) -> str:
    rows = cur.fetchall() if cur.description else []
    out = []
    for row in rows:
        out.append(" | ".join("NULL" if v is None else str(v) for v in row))
    return "\n".join(out)


class SqlSession:
    def __init__(self, conninfo: str, role: str):
        self.role = role
        self.conn = psycopg.connect(conninfo, autocommit=True)
        # every value as PostgreSQL's own text output, as psql prints it (unknown types already are)
        for t in postgres.types:
            self.conn.adapters.register_loader(t.oid, TextLoader)
            if getattr(t, "array_oid", 0):
                self.conn.adapters.register_loader(t.array_oid, TextLoader)
        self.variables: dict[str, str] = {}

    def cursor(self):
        return self.conn.cursor()

    def run_block(self, block: Block) -> list[str]:
        """Problems found in the block (empty: it passed)."""
        problems = []
        for stmt, gset, trailer in split_sql(rename_role(block.code, self.role)):
            sql = interpolate(stmt, self.variables)
            if not sql.strip():
                continue
            expected = expected_of(trailer)
            cur = self.cursor()
            try:
                cur.execute(sql, prepare=False)
                actual = render_rows(cur)
                if gset:
                    if cur.rowcount != 1 and not actual:
                        problems.append(f"\\gset needs exactly one row: {first_line(sql)}")
                    else:
                        row = actual.split("\n")[0].split(" | ")
                        for col, v in zip(cur.description, row):
                            self.variables[col.name] = v
            except psycopg.Error as e:
                diag = e.diag
                actual = f"ERROR {diag.sqlstate}: {diag.message_primary}"
                if expected is None:
                    problems.append(f"{first_line(sql)}\n      raised:\n{indent(actual)}")
                    continue
            if expected is not None and not matches(expected, actual, True):
                problems.append(
                    f"{first_line(sql)}\n      page shows:\n{indent(expected)}\n      got:\n{indent(actual)}"
                )
        return problems

    def close(self):
        self.conn.close()


def first_line(sql: str) -> str:
    line = sql.strip().split("\n")[0]
    return line if len(line) < 110 else line[:107] + "..."


# ---------------------------------------------------------------- shell


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROLE_WORD = re.compile(r"(?<=://)gateway(?=[@:])|(?<![\w./-])gateway(?![\w/-])")


def rename_role(code: str, role: str) -> str:
    """The docs' example role `gateway` becomes a role of this run: roles belong to the whole
    cluster, and each page starts from nothing."""
    return ROLE_WORD.sub(role, code)


def substitutions(code: str, ctx: "PageContext") -> str:
    """The documented rewrites of environment-specific strings (docs/README.md)."""
    code = rename_role(code, ctx.role)
    code = code.replace("127.0.0.1:8070", f"127.0.0.1:{ctx.port}")
    # the checkout's own debug build, by absolute paths (cargo run from the scratch directory
    # would see other paths and rebuild everything)
    code = re.sub(r"(?<![\w/])target/(release|debug)/", f"{ROOT}/target/debug/", code)
    code = re.sub(r"\bcargo build( --release)?\b", f"cargo build --manifest-path {ROOT}/Cargo.toml", code)
    code = re.sub(r"(?<=-d )odoo\b", ctx.db, code)
    code = re.sub(r"(?<=/)odoo(?=[?\s'\"]|$)", ctx.db, code, flags=re.M)
    code = code.replace("host=/var/run/postgresql", f"host={ctx.pghost}")
    if ctx.pgport != "5432":
        # a cluster on another port (a private test cluster): URLs name it too
        code = re.sub(rf"host={re.escape(ctx.pghost)}(?![\w/&]*port=)", f"host={ctx.pghost}&port={ctx.pgport}", code)
        code = code.replace("@127.0.0.1/", f"@127.0.0.1:{ctx.pgport}/")
    return code


SH_PRELUDE = r"""
set -a
# no browser here: "opening" a page means it answers 200
xdg-open() { curl -sf -o /dev/null "$1"; }
trap 'env -0 > "$AGW_DOCS_STATE"' EXIT
set -eo pipefail
"""

# Commands that install into the system, or run the suites (and so this runner) again: a block
# that has one is never run; it must carry a skip marker (docs/README.md).
NEVER_RUN = re.compile(
    r"\bmake\s+(demo|test|bench|chaos)\b|\bcargo\s+pgrx\s+(install|init|package)\b|\bcargo\s+install\b"
    r"|scripts/(setup|demo|test)\.sh|\bapt(-get)?\s+install\b|\bsudo\b|\bpip\s+install\b|\bcargo\s+test\b"
)

SKIP_ENV = {"PWD", "OLDPWD", "SHLVL", "_", "AGW_DOCS_STATE"}


@dataclass
class PageContext:
    db: str
    conninfo: str
    pghost: str
    pgport: str
    port: int
    workdir: Path
    role: str
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)
    front_started: bool = False

    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def wait_live(ctx: PageContext, proc: subprocess.Popen | None, timeout: float = 60) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return f"the server exited with status {proc.returncode}"
        try:
            with urllib.request.urlopen(ctx.api() + "/health/live", timeout=2) as r:
                if r.status == 200:
                    return None
        except OSError:
            pass
        time.sleep(0.2)
    return f"the server did not answer /health/live within {timeout:.0f} s"


def needs_front(code: str) -> bool:
    return "$API" in code or "127.0.0.1:8070" in code


def start_front(ctx: PageContext, binary: Path) -> str | None:
    if not binary.exists():
        return f"{binary} not found (cargo build -p api_gateway_front)"
    log = open(ctx.workdir / "front.log", "ab")
    url = f"postgresql:///{ctx.db}?host={ctx.pghost}&port={ctx.pgport}"
    proc = subprocess.Popen(
        [str(binary), "serve", "--database-url", url, "--listen", f"127.0.0.1:{ctx.port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ctx.procs.append(proc)
    ctx.front_started = True
    return wait_live(ctx, proc)


def run_sh(ctx: PageContext, block: Block, background: bool) -> tuple[int | None, str, str]:
    state = ctx.workdir / "state"
    env = dict(ctx.env)
    env["AGW_DOCS_STATE"] = str(state)
    script = SH_PRELUDE + substitutions(block.code, ctx)
    if background:
        log = open(ctx.workdir / f"background-{block.line}.log", "ab")
        proc = subprocess.Popen(
            cwd=ctx.workdir / "checkout",
            args=["bash", "-c", script.replace("trap 'env -0 > \"$AGW_DOCS_STATE\"' EXIT\n", "")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ctx.procs.append(proc)
        ctx.front_started = True
        # a block that builds before it serves gets the build's time as well
        err = wait_live(ctx, proc, timeout=900 if "cargo build" in script else 60)
        return (None if err is None else 1), "", err or ""
    p = subprocess.Popen(
        ["bash", "-c", script],
        cwd=ctx.workdir / "checkout",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = p.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the whole block, not only bash
        stdout, _ = p.communicate()
        return 124, stdout.decode(errors="replace"), f"timed out after {BLOCK_TIMEOUT_S} s"
    if state.exists():
        new_env = {}
        for item in state.read_bytes().split(b"\0"):
            if b"=" in item:
                k, v = item.split(b"=", 1)
                k = k.decode()
                if k not in SKIP_ENV and not k.startswith("BASH_FUNC_"):
                    new_env[k] = v.decode(errors="replace")
        ctx.env = new_env
    return p.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


def stop_all(ctx: PageContext):
    for proc in ctx.procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in ctx.procs:
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    ctx.procs.clear()


# ---------------------------------------------------------------- databases


def psql(*args: str, db: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def make_template(name: str) -> None:
    subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/lib.sh"; load_fixture_db "$1" "$2"', "_", name, str(FIXTURE)],
        check=True,
    )


def page_slug(page: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", page.removesuffix(".md").lower()).strip("_")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="*", help="pages to run (default: README.md and docs/*.md)")
    ap.add_argument("--db-prefix", default=os.environ.get("AGW_DOCS_DB_PREFIX", "agw_docs"))
    ap.add_argument("--bin", default=os.environ.get("API_GATEWAY_BIN", str(ROOT / "target/debug/api-gateway")))
    ap.add_argument("--keep", action="store_true", help="keep the page databases afterwards")
    ap.add_argument("--list", action="store_true", help="list the blocks and what would be done")
    args = ap.parse_args()

    pages = [ROOT / p for p in args.pages] if args.pages else [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    parsed = {str(p.relative_to(ROOT)): parse_page(p) for p in pages}

    if args.list:
        for page, blocks in parsed.items():
            for b in blocks:
                if b.lang in RUNNABLE:
                    what = b.marker or "run"
                    cmp = " +output" if b.expected is not None else ""
                    if b.lang == "sql" and any(expected_of(t) for _, _, t in split_sql(b.code)):
                        cmp = " +results"
                    print(f"{page}:{b.line} {b.lang} {what}{cmp} {b.reason}")
        return 0

    os.environ.setdefault("PGHOST", "/var/run/postgresql")
    pghost = os.environ["PGHOST"]
    pgport = os.environ.get("PGPORT", "5432")
    binary = Path(args.bin)
    template = f"{args.db_prefix}_template"
    role = f"{args.db_prefix}_gateway"
    os.environ["PGOPTIONS"] = os.environ.get("PGOPTIONS", "") + " -c client_min_messages=warning"
    make_template(template)

    passed = failed = illustrative = 0
    workroot = Path(tempfile.mkdtemp(prefix="agw-docs-"))
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AGW_", "DATABASE_URL", "API_GATEWAY_"))
    }
    base_env["PATH"] = f"{binary.parent}:{base_env.get('PATH', '/usr/bin:/bin')}"
    try:
        for page, blocks in parsed.items():
            runnable = [b for b in blocks if b.lang in RUNNABLE]
            if not runnable:
                continue
            db = f"{args.db_prefix}_{page_slug(page)}"
            psql("-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', "-c", f'DROP ROLE IF EXISTS "{role}"')
            psql("-c", f'CREATE DATABASE "{db}" TEMPLATE "{template}"')
            workdir = workroot / page_slug(page)
            workdir.mkdir()
            # sh blocks run in a mirror of the checkout (symlinks), so that the files examples
            # write (`> faults.csv`) stay out of the repository
            (workdir / "checkout").mkdir()
            for entry in ROOT.iterdir():
                if not entry.name.startswith("."):
                    (workdir / "checkout" / entry.name).symlink_to(entry)
            ctx = PageContext(
                db=db,
                conninfo=f"dbname={db} host={pghost} port={pgport}",
                pghost=pghost,
                pgport=pgport,
                port=free_port(),
                workdir=workdir,
                role=role,
            )
            ctx.env = dict(base_env, PGDATABASE=db, PGHOST=pghost, PGPORT=pgport, API=ctx.api())
            session = SqlSession(ctx.conninfo, role)
            # a page that grants to the example role without creating it relies on the one
            # docs/sql.md#grants creates: create it here
            texts = [b.code for b in runnable if b.marker != "skip"]
            if any(ROLE_WORD.search(t) for t in texts) and not any(
                re.search(r"CREATE ROLE gateway\b", t) for t in texts
            ):
                psql("-c", f'CREATE ROLE "{role}" LOGIN')
            has_background = any(b.marker == "background" for b in runnable)
            try:
                for b in runnable:
                    where = f"{page}:{b.line} {b.lang}"
                    if b.marker == "skip":
                        illustrative += 1
                        print(f"illustrative {where}: {b.reason}")
                        continue
                    problems: list[str] = []
                    if b.lang == "sql":
                        problems = session.run_block(b)
                    else:
                        background = b.marker == "background"
                        if m := NEVER_RUN.search(b.code):
                            problems.append(
                                f"not run: `{m.group(0)}` installs into the system or runs the suites; "
                                "mark the block <!-- docs-test: skip: reason -->"
                            )
                        elif not background and not has_background and not ctx.front_started and needs_front(b.code):
                            err = start_front(ctx, binary)
                            if err:
                                problems.append(f"could not start the front: {err} (log: {workdir}/front.log)")
                        if not problems:
                            rc, out, err = run_sh(ctx, b, background)
                            if rc not in (0, None):
                                problems.append(f"exit status {rc}\n      stderr:\n{indent(err)}\n      stdout:\n{indent(out)}")
                            elif b.expected is not None and not matches(
                                b.expected, out, b.expected_lang == "json" or looks_like_json(b.expected)
                            ):
                                problems.append(f"page shows:\n{indent(b.expected)}\n      got:\n{indent(out)}")
                    if problems:
                        failed += 1
                        print(f"FAIL {where}")
                        for p in problems:
                            print(f"    - {p}")
                    else:
                        passed += 1
                        print(f"ok   {where}")
            finally:
                session.close()
                stop_all(ctx)
                if not args.keep:
                    psql("-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', "-c", f'DROP ROLE IF EXISTS "{role}"')
    finally:
        if not args.keep:
            psql("-c", f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            shutil.rmtree(workroot, ignore_errors=True)
        else:
            print(f"kept: databases {args.db_prefix}_*, logs in {workroot}")
    print(f"docs: {passed} passed, {failed} failed ({illustrative} illustrative blocks not run)")
    return 1 if failed else 0


def indent(text: str) -> str:
    return "\n".join("        " + ln for ln in text.rstrip().split("\n")[-30:])


if __name__ == "__main__":
    sys.exit(main())
