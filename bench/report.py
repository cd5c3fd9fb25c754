#!/usr/bin/env python3
"""Writes docs/benchmarks.md from scratch out of the results of one `make bench` run.

  report.py [RESULTS_DIR [OUT.md]]      (defaults: target/bench, docs/benchmarks.md)

Reads RESULTS_DIR/<script>.jsonl (one {"id", "value", "unit"} object a line, see bench/lib.sh)
and RESULTS_DIR/<script>.status ("<exit status> <seconds>", written by bench/run.sh). This file
knows every workload: its wording, its baseline, how its ratio is computed and its target (from
the issues). A script that failed or did not run leaves its section saying so; nothing here
asserts a timing (the machine is shared and noisy): targets are reported as met or not.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The scripts in the order bench/run.sh runs them, with the section each one feeds.
SCRIPTS = {
    "gate": "bench/gate.sh",
    "rate_limit": "bench/rate_limit.sh",
    "data": "bench/data.sh",
    "http": "bench/http.sh",
    "webhooks": "bench/webhooks.sh",
    "stats": "bench/stats.sh",
    "http_logging": "bench/http_logging.sh",
    "forward": "bench/forward.sh",
    "webhooks_baseline": "bench/webhooks_baseline.sh",
}


class Missing(Exception):
    """A figure a table needs is not in the results (its script failed or was cut short)."""


class Results:
    def __init__(self, directory: Path):
        self.dir = directory
        self.values: dict[str, dict[str, float]] = {}
        self.status: dict[str, tuple[int, float]] = {}
        for name in SCRIPTS:
            path = directory / f"{name}.jsonl"
            if path.exists():
                self.values[name] = {}
                for line in path.read_text().splitlines():
                    if line.strip():
                        row = json.loads(line)
                        self.values[name][row["id"]] = float(row["value"])
            status = directory / f"{name}.status"
            if status.exists():
                rc, secs = status.read_text().split()
                self.status[name] = (int(rc), float(secs))

    def get(self, script: str, id: str) -> float:
        try:
            return self.values[script][id]
        except KeyError:
            raise Missing(f"{script}:{id}") from None

    def has(self, script: str, id: str) -> bool:
        return id in self.values.get(script, {})

    def rounds(self, script: str, id: str) -> list[float]:
        """The per-round figures id@1, id@2, ... (bench/lib.sh's result_rounds), if any."""
        v = self.values.get(script, {})
        out = []
        while f"{id}@{len(out) + 1}" in v:
            out.append(v[f"{id}@{len(out) + 1}"])
        return out

    def ratio(self, script: str, ours: str, base: str) -> float:
        """ours / base: the median of the per-round ratios when both were measured in the same
        rounds (each run against the baseline next to it), else the ratio of the two figures."""
        a, b = self.rounds(script, ours), self.rounds(script, base)
        if a and len(a) == len(b):
            return statistics.median(x / y for x, y in zip(a, b))
        return self.get(script, ours) / self.get(script, base)


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------
def per_s(v: float, unit: str = "/s") -> str:
    return f"{v:,.0f}{unit}"


def tps(v: float) -> str:
    return f"{v:,.0f} tps"


def us(v: float) -> str:
    return f"{v:,.1f} µs" if v < 1000 else f"{v:,.0f} µs"


def ms(v: float) -> str:
    return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


def x(v: float) -> str:
    return f"{v:.2f}x"


# Every row that has a target, as (workload, met), for the summary at the top of the page.
TARGETS: list[tuple[str, bool]] = []


class Table:
    """workload | ours | baseline | ratio | target | met?"""

    def __init__(self, ours: str = "ours", baseline: str = "baseline", ratio: str = "ratio"):
        self.header = ["workload", ours, baseline, ratio, "target", "met?"]
        self.rows: list[list[str]] = []
        self.missing: list[str] = []

    def add(self, workload: str, compute, target: float | None = None, at_most: bool = False,
            short: str | None = None):
        """compute() -> (ours text, baseline text, ratio value); a Missing figure leaves a row
        saying so. The target is a lower bound on the ratio unless at_most; `short` names the
        row in the summary of missed targets."""
        try:
            ours, base, ratio = compute()
        except Missing as e:
            self.missing.append(str(e))
            self.rows.append([workload, "not measured", "", "", "", ""])
            return
        if target is None:
            target_text, met = "—", "—"
        else:
            target_text = f"{'≤' if at_most else '≥'} {target:g}x"
            ok = ratio <= target if at_most else ratio >= target
            met = "yes" if ok else "**no**"
            TARGETS.append((short or workload, ok))
        self.rows.append([workload, ours, base, x(ratio) if ratio is not None else "—", target_text, met])

    def markdown(self) -> list[str]:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return lines


def plain_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


# ------------------------------------------------------------------------------------------------
# Sections: each returns Markdown lines; a Missing figure outside a Table skips the rest of it.
# ------------------------------------------------------------------------------------------------
def section_gate(r: Results) -> list[str]:
    g = lambda id: r.get("gate", id)  # noqa: E731
    rr = lambda a, b: r.ratio("gate", a, b)  # noqa: E731
    select1 = lambda: g("select1_c4")  # noqa: E731
    t = Table()
    t.add("`SELECT 1`, 4 clients (the floor of a round trip)", lambda: (tps(select1()), "—", None))
    t.add(
        f"`jwt_verify` in one statement ({g('loop_n'):,.0f} calls), per call, vs HS256 verify in SQL with "
        "pgcrypto (pgjwt's way); ratio = speed-up",
        lambda: (us(g("jwt_loop_us")), us(g("pgjwt_loop_us")), rr("pgjwt_loop_us", "jwt_loop_us")),
        target=50, short="jwt_verify vs pgcrypto (50x)",
    )
    t.add("`jwt_verify`, one call a transaction, 4 clients, vs `SELECT 1`",
          lambda: (tps(g("jwt_verify_tps")), tps(select1()), rr("jwt_verify_tps", "select1_c4")), target=0.6,
          short="jwt_verify vs SELECT 1")
    t.add("`rate_limit_hit`, 10,000 random subjects, 4 clients, vs `SELECT 1`",
          lambda: (tps(g("rl10k_tps")), tps(select1()), rr("rl10k_tps", "select1_c4")), target=0.25,
          short="rate_limit_hit 10k subjects vs SELECT 1")
    t.add("(reference) plain UPSERT counter, UNLOGGED table, 10,000 subjects, vs `SELECT 1`",
          lambda: (tps(g("upsert_unlogged_tps")), tps(select1()), rr("upsert_unlogged_tps", "select1_c4")))
    t.add("(reference) plain UPSERT counter, logged table, 10,000 subjects, vs `SELECT 1`",
          lambda: (tps(g("upsert_logged_tps")), tps(select1()), rr("upsert_logged_tps", "select1_c4")))
    t.add("`rate_limit_hit`, one hot subject, 16 clients, vs `SELECT 1` at 16 clients",
          lambda: (tps(g("rl_hot16_tps")), tps(g("select1_c16")), rr("rl_hot16_tps", "select1_c16")),
          target=0.15, short="rate_limit_hit hot subject, 16 clients")
    t.add("(base of the next two) `rate_limit_hit`, one subject, 4 clients, vs `SELECT 1`",
          lambda: (tps(g("rl_one4_tps")), tps(select1()), rr("rl_one4_tps", "select1_c4")))
    t.add("`authenticate`, valid JWT (uid 2), 4 clients, vs `rate_limit_hit` one subject",
          lambda: (tps(g("auth_jwt_tps")), tps(g("rl_one4_tps")), rr("auth_jwt_tps", "rl_one4_tps")),
          target=0.7, short="authenticate with a JWT vs rate_limit_hit")
    t.add("`authenticate`, cached Odoo API key (uid 5), 4 clients, vs `rate_limit_hit` one subject",
          lambda: (tps(g("auth_key_tps")), tps(g("rl_one4_tps")), rr("auth_key_tps", "rl_one4_tps")),
          target=0.7, short="authenticate with a cached API key vs rate_limit_hit")
    t.add("`authenticate`, valid JWT (uid 2), 4 clients, vs `SELECT 1` run just before and after it (issue 17)",
          lambda: (tps(g("auth_jwt_tps")), tps(g("select1_auth_jwt")), rr("auth_jwt_tps", "select1_auth_jwt")),
          target=0.5, short="authenticate with a JWT vs SELECT 1")
    t.add("`authenticate`, cached Odoo API key (uid 5), 4 clients, vs `SELECT 1` run just before and after it (issue 17)",
          lambda: (tps(g("auth_key_tps")), tps(g("select1_auth_key")), rr("auth_key_tps", "select1_auth_key")),
          target=0.5, short="authenticate with a cached API key vs SELECT 1")
    t.add(
        f"`verify_api_key` uncached, {g('nkeys'):,.0f} keys in a fresh backend, per key, vs Python passlib "
        "verifying the same Odoo hashes; ratio = our time / passlib's",
        lambda: (us(g("apikey_ours_us")), us(g("apikey_passlib_us")), rr("apikey_ours_us", "apikey_passlib_us")),
        target=1.2, at_most=True, short="verify_api_key uncached vs passlib",
    )
    t.add("`verify_api_key` cached (same key), 4 clients, vs `SELECT 1`",
          lambda: (tps(g("apikey_cached_tps")), tps(select1()), rr("apikey_cached_tps", "select1_c4")), target=0.5,
          short="verify_api_key cached vs SELECT 1")
    lines = t.markdown()
    try:
        firsts = r.rounds("gate", "select1_c4_first") or [g("select1_c4_first")]
        lasts = r.rounds("gate", "select1_c4_last") or [g("select1_c4_last")]
        spread = max(abs(a - b) / ((a + b) / 2) for a, b in zip(firsts, lasts))
        lines += ["", f"{len(firsts)} interleaved round(s) of every pgbench run; in each, `SELECT 1` at 4 "
                      "clients ran first and last and the round's baseline is their mean (`authenticate`'s rows: "
                      "the mean of the `SELECT 1` runs just before and after it); a ratio is the median "
                      "of its rounds' ratios, the figures are medians. Largest first-to-last spread of `SELECT 1` "
                      f"in a round: {spread:.0%}"
                      + (" (the machine was busy: read these ratios with care)" if spread > 0.2 else "") + ". "
                      f"`rate_limit_hit` does {rr('rl10k_tps', 'upsert_unlogged_tps'):.2f}x the calls of the "
                      "plain UNLOGGED UPSERT it is built on (the rest is the function call and its checks)."]
    except Missing:
        pass
    return lines


def section_rate_limit(r: Results) -> list[str]:
    g = lambda id: r.get("rate_limit", id)  # noqa: E731
    counts = sorted({int(k.split("_c")[-1]) for k in r.values.get("rate_limit", {}) if k.startswith("select1_c") and "@" not in k}) or [1, 16, 64]
    lines = ["How the cost grows with concurrency: each row against `SELECT 1` at the same number of "
             "pgbench clients (a hot subject is one counter row every client updates).", ""]
    t = Table()
    for c in counts:
        t.add(f"`rate_limit_hit`, 10,000 random subjects, {c} client{'s' if c > 1 else ''}, vs `SELECT 1`",
              lambda c=c: (tps(g(f"rl_random_c{c}")), tps(g(f"select1_c{c}")), r.ratio("rate_limit", f"rl_random_c{c}", f"select1_c{c}")),
              )
        t.add(f"`rate_limit_hit`, one hot subject, {c} client{'s' if c > 1 else ''}, vs `SELECT 1`",
              lambda c=c: (tps(g(f"rl_hot_c{c}")), tps(g(f"select1_c{c}")), r.ratio("rate_limit", f"rl_hot_c{c}", f"select1_c{c}")),
              target=0.15 if c == 16 else None, short=f"rate_limit_hit hot subject, {c} clients (growth run)")
        if r.has("rate_limit", f"c_floor_c{c}"):
            t.add(f"`rate_limit_hit`, 10,000 random subjects, {c} client{'s' if c > 1 else ''}, vs PostgreSQL's own "
                  f"C function `pg_walfile_name_offset` called the same way (c_function_floor.sql)",
                  lambda c=c: (tps(g(f"rl_random_c{c}")), tps(g(f"c_floor_c{c}")),
                               r.ratio("rate_limit", f"rl_random_c{c}", f"c_floor_c{c}")))
    lines += t.markdown()
    if r.has("rate_limit", "shared_memory"):
        lines += ["", "Counters in " + ("shared memory (`api_gateway` in `shared_preload_libraries`), sliding window"
                                        if g("shared_memory") == 1 else
                                        "the UNLOGGED table (`api_gateway` NOT preloaded), sliding window") + "."]
    lines += ["", "Against Redis (Debian's `redis-server`), the fixed window users add Redis for: one Lua "
              "script (`EVALSHA`) doing `INCR`, `EXPIRE` on a window's first hit and `TTL`, returning "
              "(allowed, remaining, reset) as `rate_limit_hit` does; `redis-benchmark` with the same "
              "number of clients, no pipelining, over a Unix socket like pgbench. The ratio is our calls "
              "per second over Redis's: below 1, Redis is faster.", ""]
    t = Table(ours="ours", baseline="Redis", ratio="ours / Redis")
    for c in counts:
        for kind, text in (("random", "10,000 random subjects"), ("hot", "one hot subject")):
            t.add(f"{text}, {c} client{'s' if c > 1 else ''}",
                  lambda c=c, kind=kind: (tps(g(f"rl_{kind}_c{c}")), per_s(g(f"redis_{kind}_c{c}"), " calls/s"),
                                          r.ratio("rate_limit", f"rl_{kind}_c{c}", f"redis_{kind}_c{c}")),
                  target=1.0, short=f"rate_limit_hit vs Redis, {text}, {c} client{'s' if c > 1 else ''} (issue 17)")
        # The floor: no function call through PostgreSQL's protocol answers faster than SELECT 1.
        t.add(f"(reference) `SELECT 1` itself, {c} client{'s' if c > 1 else ''}, vs Redis's script (random subjects)",
              lambda c=c: (tps(g(f"select1_c{c}")), per_s(g(f"redis_random_c{c}"), " calls/s"),
                           r.ratio("rate_limit", f"select1_c{c}", f"redis_random_c{c}")))
        # A function answering one row in FROM costs more than SELECT 1 even when it does nothing.
        if r.has("rate_limit", f"c_floor_c{c}"):
            t.add(f"(floor) PostgreSQL's own C function `pg_walfile_name_offset`, one row from a random argument "
                  f"in FROM, {c} client{'s' if c > 1 else ''}, vs Redis's script (random subjects)",
                  lambda c=c: (tps(g(f"c_floor_c{c}")), per_s(g(f"redis_random_c{c}"), " calls/s"),
                               r.ratio("rate_limit", f"c_floor_c{c}", f"redis_random_c{c}")))
    for kind, text in (("random", "10,000 random subjects"), ("hot", "one hot subject")):
        if r.has("rate_limit", f"rl_table_{kind}_c16"):
            t.add(f"{text}, 16 clients, counters in the table (the fallback without shared_preload_libraries)",
                  lambda kind=kind: (tps(g(f"rl_table_{kind}_c16")), per_s(g(f"redis_{kind}_c16"), " calls/s"),
                                     r.ratio("rate_limit", f"rl_table_{kind}_c16", f"redis_{kind}_c16")))
    if r.has("rate_limit", "redis_random_tcp_c16"):
        t.add("10,000 random subjects, 16 clients, Redis over TCP 127.0.0.1 (how an app server usually reaches it)",
              lambda: (tps(g("rl_random_for_tcp_c16")), per_s(g("redis_random_tcp_c16"), " calls/s"),
                       r.ratio("rate_limit", "rl_random_for_tcp_c16", "redis_random_tcp_c16")))
    lines += t.markdown()
    try:
        parts = []
        for c in counts:
            ours = [r.ratio("rate_limit", f"rl_{k}_c{c}", f"redis_{k}_c{c}") for k in ("random", "hot")
                    if r.has("rate_limit", f"redis_{k}_c{c}")]
            if ours:
                parts.append(f"{c} client{'s' if c > 1 else ''}: {min(ours):.2f}x to {max(ours):.2f}x")
        if not parts:
            raise Missing("rate_limit", "redis")
        lines += ["", "**`rate_limit_hit` against Redis (ours / Redis, random and hot subject):** "
                  + "; ".join(parts) + ". What a count in PostgreSQL buys: it is taken in "
                  "the same transaction as the request's gate (inside `authenticate`, no extra round trip), "
                  "it is exact under concurrency (one subject's hits are serialised by a lock of its "
                  "partition in shared memory, or by its row), it is visible and adjustable in SQL next to "
                  "the Odoo data, and there is no second service to run, secure, monitor and fail over. "
                  "With Redis the front still makes its database call for the credential, so a request "
                  "pays a Redis round trip on top of it. Neither side is durable here: our counters are in "
                  "shared memory (or an UNLOGGED table) and Redis runs without persistence. Where `SELECT 1` "
                  "itself is at or below Redis (the reference rows), no function called through "
                  "PostgreSQL's protocol can reach 1x; where the floor row (PostgreSQL's own C function answering "
                  "one row in FROM, with no lock and nothing kept) is below Redis, no function answering a row "
                  "can reach it."]
    except Missing:
        pass
    return lines


def section_data(r: Results) -> list[str]:
    g = lambda id: r.get("data", id)  # noqa: E731
    sizes = sorted({int(k.split("_r")[-1]) for k in r.values.get("data", {}) if k.startswith("search_read_r") and "@" not in k}) or [10, 80, 1000]
    t = Table(baseline="hand-written SQL")
    for n in sizes:
        t.add(f"`search_read` res.partner, {n:,} rows x 5 fields, demo user (record rules), 4 clients",
              lambda n=n: (tps(g(f"search_read_r{n}")), tps(g(f"handwritten_r{n}")),
                           r.ratio("data", f"search_read_r{n}", f"handwritten_r{n}")),
              target=0.7 if n == 80 else None, short=f"search_read {n} rows vs hand-written SQL")
    try:
        t.add("`search_read` res.partner, 80 rows, + `display_name` and 2 many2one vs the same 5 fields alone",
              lambda: (tps(g("search_read_display_r80")), tps(g("search_read_plain_r80")),
                       r.ratio("data", "search_read_display_r80", "search_read_plain_r80")),
              short="display names: cost on 80 rows")
    except Missing:
        pass
    lines = t.markdown()
    lines += ["", "The hand-written query returns the identical JSON at each size (checked before timing)."]
    real = r.values.get("data", {})
    if any(k.startswith("real_sr_") for k in real):
        t = Table(baseline="hand-written SQL")
        users = {"admin": "admin (uid 2)", "demo": "demo (uid 5)", "portal": "portal (uid 6, portal rule)",
                 "jeff": "jeff (uid 7, second company)"}
        for rows, what in ((10, '`[("is_company", "=", True)]`, 10 rows x name, email'),
                           (1000, "`[]`, 1,000 rows x name, email (2,000 more partners)")):
            for login, label in users.items():
                id = f"{login}_r{rows}"
                if f"real_sr_{id}" not in real:
                    continue
                t.add(f"`search_read` res.partner {what}, {label}, 4 clients",
                      lambda id=id: (tps(g(f"real_sr_{id}")), tps(g(f"real_hw_{id}")),
                                     r.ratio("data", f"real_sr_{id}", f"real_hw_{id}")),
                      target=0.6 if rows == 10 else 0.85,
                      short=f"real database: search_read {rows} rows, {login}, vs hand-written SQL")
        lines += ["", "**On the real Odoo database** (`../shared/fixtures/odoo19_demo.sql.gz`: 59 modules, "
                  "6,856 `ir_model_fields` rows, 157 record rules), same run:", ""] + t.markdown()
        if "real_select1" in real:
            lines += ["", f"`SELECT 1` on that database, same clients: {tps(g('real_select1'))}."]
    if "real_display_r80" in real or "odoo_fill_filled_ms" in real:
        t = Table(ours="with", baseline="without")
        t.add("real database: `search_read` res.partner, 80 rows, demo user, + `display_name` and "
              "`parent_id`, `country_id` vs the same 5 stored fields alone, 4 clients",
              lambda: (tps(g("real_display_r80")), tps(g("real_plain_r80")),
                       r.ratio("data", "real_display_r80", "real_plain_r80")),
              short="real database: display names, cost on 80 rows")
        rows = int(real.get("odoo_fill_rows", 0))
        t.add(f"GET /api/v1/product.product ({rows} rows, 4 stored fields) + `lst_price` filled by one "
              "Odoo JSON-2 read vs without it, one connection, latency median (ratio = requests/s with / without)",
              lambda: (ms(g("odoo_fill_filled_ms")), ms(g("odoo_fill_plain_ms")),
                       r.ratio("data", "odoo_fill_plain_ms", "odoo_fill_filled_ms")),
              short="a field Odoo fills: cost")
        t.add(f"the same read with `lst_price` through the gateway vs Odoo's own JSON-2 `read` of those "
              f"{rows} records and fields (ratio = requests/s gateway / Odoo)",
              lambda: (ms(g("odoo_fill_filled_ms")), ms(g("odoo_fill_json2_ms")),
                       r.ratio("data", "odoo_fill_json2_ms", "odoo_fill_filled_ms")),
              short="a field Odoo fills vs Odoo alone")
        lines += ["", "**Issue 20: what display names and fields Odoo fills cost** (same run; the "
                  "Odoo rows need `BENCH_ODOO_URL`, a running Odoo 19 on the demo database):", ""] + t.markdown()
    lines += section_nested(r)
    return lines


def section_nested(r: Results) -> list[str]:
    """Issue 18: nested reads (cost against a flat read) and cursor paging (page 1,000 vs 1)."""
    g = lambda id: r.get("data", id)  # noqa: E731
    have = r.values.get("data", {})
    lines: list[str] = []
    if "nested_read_l20" in have:
        t = Table(ours="nested", baseline="flat", ratio="cost (flat / nested)")
        t.add("a sale order of 20 lines read with its lines and each line's product in one request "
              "(`order_line{product_id{name,default_code},...}`) vs the order alone, demo user, real database, 4 clients",
              lambda: (tps(g("nested_read_l20")), tps(g("flat_read_l20")),
                       r.ratio("data", "flat_read_l20", "nested_read_l20")),
              target=2, at_most=True, short="nested read of a 20-line order vs a flat read (cost)")
        if "hand_nested_l20" in have:
            t.add("the floor: the same nested and flat reads by hand-written SQL (same shape; no access rights, "
                  "record rules or display names), nested vs flat",
                  lambda: (tps(g("hand_nested_l20")), tps(g("hand_flat_l20")),
                           r.ratio("data", "hand_flat_l20", "hand_nested_l20")))
        if "three_reads_l20" in have:
            t.add("the same nested read vs the three plain reads it replaces (the order; its lines by "
                  "`order_id`; their products by id, from the lines' answer), three round trips",
                  lambda: (tps(g("nested_read_l20b")), tps(g("three_reads_l20")),
                           r.ratio("data", "three_reads_l20", "nested_read_l20b")))
        lines += ["", "**Nested reads** (issue 18), same run:", ""] + t.markdown()
    if "cursor_p1000" in have:
        t = Table(ours="page 1,000", baseline="page 1", ratio="ratio")
        t.add("cursor paging (`search_page`, 10 rows a page, order id) over 10,050 partners: page 1,000 vs page 1, 4 clients",
              lambda: (tps(g("cursor_p1000")), tps(g("cursor_p1")), r.ratio("data", "cursor_p1000", "cursor_p1")),
              target=0.8, short="cursor paging: page 1,000 vs page 1")
        if "offset_p1000" in have:
            t.add("offset paging (`search_read`, offset 9,990) for comparison: page 1,000 vs page 1",
                  lambda: (tps(g("offset_p1000")), tps(g("offset_p1")), r.ratio("data", "offset_p1000", "offset_p1")))
        lines += ["", "**Cursor paging** (issue 18), same run, mini fixture:", ""] + t.markdown()
    return lines


def section_http(r: Results) -> list[str]:
    g = lambda id: r.get("http", id)  # noqa: E731
    try:
        conns = int(g("http_connections"))
    except Missing:
        conns = 8
    t = Table(ours="HTTP", baseline="same SQL via pgbench")
    for kind, text in (("jwt", "JWT access token"), ("key", "cached Odoo API key")):
        t.add(f"GET /api/v1/res.partner, 80 records x 5 fields, demo user, {text}, {conns} connections",
              lambda kind=kind: (per_s(g(f"http_{kind}_rps"), " req/s"), tps(g(f"sql_{kind}_tps")),
                                 r.ratio("http", f"http_{kind}_rps", f"sql_{kind}_tps")),
              target=0.5, short=f"HTTP with a {text} vs the same SQL")
    lines = ["The ratio is what the HTTP layer (request parsing, the pool, JSON out, the response) costs "
             "on top of the database work it asks for.", ""] + t.markdown()
    try:
        lines += ["", f"Latency under that load (wrk): JWT p50 {ms(g('http_jwt_p50_ms'))}, p99 {ms(g('http_jwt_p99_ms'))}; "
                  f"API key p50 {ms(g('http_key_p50_ms'))}, p99 {ms(g('http_key_p99_ms'))}."]
    except Missing:
        pass
    if r.has("http", "real_http_key_two_rps"):
        t = Table(ours="HTTP", baseline="same SQL via pgbench")
        query = "GET /api/v1/res.partner?domain=[[\"is_company\",\"=\",true]]&fields=name,email&limit=10"
        for mode, mode_text in (("two", "gate and data call in two transactions (`--single-statement false`)"),
                                ("single", "one statement (`--single-statement true`, the default with counters in shared memory)")):
            for kind, text in (("key", "admin's Odoo API key"), ("jwt", "JWT access token")):
                t.add(f"`{query}`, admin, {text}, {mode_text}, {conns} connections",
                      lambda kind=kind, mode=mode: (per_s(g(f"real_http_{kind}_{mode}_rps"), " req/s"),
                                                    tps(g(f"real_sql_{kind}_{mode}_tps")),
                                                    r.ratio("http", f"real_http_{kind}_{mode}_rps",
                                                            f"real_sql_{kind}_{mode}_tps")),
                      target=0.6, short=f"real database: HTTP ({text}, {mode} statement mode) vs the same SQL")
        if r.has("http", "real_http_key_unpiped_rps"):
            t.add(f"(reference) the one-statement row with the API key, `--pipelined-connections 0` (each request "
                  f"takes a pooled connection of its own), {conns} connections",
                  lambda: (per_s(g("real_http_key_unpiped_rps"), " req/s"), tps(g("real_sql_key_single_tps")),
                           r.ratio("http", "real_http_key_unpiped_rps", "real_sql_key_single_tps")),
                  target=None, short="(reference) real database: HTTP without pipelined connections vs the same SQL")
        if r.has("http", "real_http_key_odoo_rps"):
            t.add(f"(reference) the one-statement row with the API key, the front forwarding writes to Odoo "
                  f"(`--odoo-url`: a read first asks which fields Odoo fills, then remembers that SQL reads "
                  f"this list whole), {conns} connections",
                  lambda: (per_s(g("real_http_key_odoo_rps"), " req/s"), tps(g("real_sql_key_single_tps")),
                           r.ratio("http", "real_http_key_odoo_rps", "real_sql_key_single_tps")),
                  target=None, short="(reference) real database: HTTP with --odoo-url vs the same SQL")
        lines += ["", "**On the real Odoo database** (`../shared/fixtures/odoo19_demo.sql.gz`), issue 14's query: "
                  "10 companies x name, email as the admin (uid 2), through the front against the statements it "
                  "sends, run by pgbench with as many clients. The front sends them on its pipelined connections "
                  "(docs/http.md, \"Pipelined connections\"); pgbench sends each on a connection of its own:",
                  ""] + t.markdown()
        if r.has("http", "real_proxy_pgbouncer_tps"):
            t = Table(ours="through PgBouncer", baseline="straight to PostgreSQL")
            t.add(f"(reference) the one-statement request above, pgbench `-M prepared`, {conns} clients, "
                  "through PgBouncer (session mode) vs straight to PostgreSQL, same rounds",
                  lambda: (tps(g("real_proxy_pgbouncer_tps")), tps(g("real_proxy_direct_tps")),
                           r.ratio("http", "real_proxy_pgbouncer_tps", "real_proxy_direct_tps")),
                  target=None, short="(reference) PgBouncer hop vs straight to PostgreSQL")
            lines += ["", "What one process relaying the requests costs on this machine: the same statement relayed "
                      "by PgBouncer (C, no HTTP, no JSON; session mode, one server connection per client, nothing "
                      "pipelined):", ""] + t.markdown()
        if r.has("http", "real_floor_rps"):
            t = Table(ours="HTTP", baseline="baseline")
            t.add(f"(floor) a bare relay: hyper and tokio-postgres sending the one statement on one pipelined "
                  f"connection, its data column as the body (front/examples/http_floor.rs) vs the same SQL via "
                  f"pgbench, {conns} connections",
                  lambda: (per_s(g("real_floor_rps"), " req/s"), tps(g("real_sql_key_single_tps")),
                           r.ratio("http", "real_floor_rps", "real_sql_key_single_tps")),
                  target=None, short="(floor) real database: a bare HTTP relay vs the same SQL")
            t.add(f"the front (API key, one statement) vs that floor, {conns} connections, same rounds",
                  lambda: (per_s(g("real_http_key_single_rps"), " req/s"), per_s(g("real_floor_rps"), " req/s"),
                           r.ratio("http", "real_http_key_single_rps", "real_floor_rps")),
                  target=None, short="real database: the front vs a bare HTTP relay")
            lines += ["", "The floor of any HTTP front here: a relay that does nothing but take the request over "
                      "HTTP, send the statement and return its JSON (no routing, no query string, no checks, no "
                      "headers, no metrics). What it leaves of pgbench's rate is what HTTP itself and the "
                      "wake-ups between wrk, the relay and PostgreSQL cost on these two shared cores; the second "
                      "row is what the front costs above it:", ""] + t.markdown()
        if r.has("http", "real_vs_odoo_rps"):
            t = Table(ours="gateway", baseline="Odoo 19 JSON-2")
            t.add(f"the same query: gateway (API key, one statement: the default with counters in shared memory) vs Odoo's `POST /json/2/res.partner/search_read`, "
                  f"{conns} connections each, same rounds",
                  lambda: (per_s(g("real_vs_gateway_rps"), " req/s"), per_s(g("real_vs_odoo_rps"), " req/s"),
                           r.ratio("http", "real_vs_gateway_rps", "real_vs_odoo_rps")),
                  target=30, short="real database: gateway vs Odoo's JSON-2, requests per second")
            lines += ["", "Against Odoo itself (`ODOO_URL`: an Odoo 19 server on this machine, same demo data, "
                      f"its own database; read only), wrk with a Lua script posting the JSON-2 call; Odoo's p50 "
                      f"latency {ms(g('real_vs_odoo_p50_ms'))}:", ""] + t.markdown()
        else:
            lines += ["", "No Odoo server was reachable (`ODOO_URL`): the comparison with JSON-2 did not run."]
    return lines


def section_webhooks(r: Results) -> list[str]:
    g = lambda id: r.get("webhooks", id)  # noqa: E731
    t = Table(ours="one webhook", baseline="no webhook")
    cases = (("a", "capture with no worker running", 0.75),
             ("c", "capture with an idle worker running (polling; its requests hang)", 0.75),
             ("b", "capture while the worker delivers to a local receiver", None))
    for case, text, target in cases:
        t.add(f"single-row INSERTs into res_partner, 4 clients: {text}",
              lambda case=case: (tps(g(f"capture_hook_{case}")), tps(g(f"capture_none_{case}")),
                                 r.ratio("webhooks", f"capture_hook_{case}", f"capture_none_{case}")),
              target=target, short="webhook capture cost (one webhook vs none)")
    lines = t.markdown()
    counts = sorted({int(k.split("_e")[-1]) for k in r.values.get("webhooks", {}) if k.startswith("drain_events_per_s_e") and "@" not in k})
    if counts:
        rate = r.values["webhooks"].get("latency_rate", 200)
        rows = []
        base = r.values["webhooks"].get(f"drain_events_per_s_e{counts[0]}")
        for e in counts:
            try:
                eps = g(f"drain_events_per_s_e{e}")
                TARGETS.append((f"webhook delivery to {e} endpoint(s)", eps >= 1000))
                rows.append([f"{e}", f"{g(f'drain_events_e{e}'):,.0f}", per_s(eps, " events/s"),
                             x(eps / base) if base else "—", "≥ 1,000/s", "yes" if eps >= 1000 else "**no**",
                             f"{ms(g(f'latency_median_ms_e{e}'))} / {ms(g(f'latency_p95_ms_e{e}'))} / "
                             f"{ms(g(f'latency_p99_ms_e{e}'))}"])
            except Missing:
                rows.append([f"{e}", "not measured", "", "", "", "", ""])
        lines += ["", f"Delivery as the number of endpoints grows (webhooks on res.partner creations, each its own "
                  f"URL on a local receiver answering 204): drain = events queued with the worker stopped, then "
                  f"delivered and recorded; latency = commit to receipt of every event while rows are committed "
                  f"at {rate:,.0f} events/s in all (so {rate:,.0f} / endpoints rows per second).", ""]
        lines += plain_table(["endpoints", "events drained", "delivery rate", f"vs {counts[0]} endpoint",
                              "target", "met?", "latency median / p95 / p99"], rows)
    return lines


def section_webhooks_baseline(r: Results) -> list[str]:
    g = lambda id: r.get("webhooks_baseline", id)  # noqa: E731
    counts = sorted({int(k.split("_e")[-1]) for k in r.values.get("webhooks_baseline", {})
                     if k.startswith("drain_ours_e") and "@" not in k})
    t = Table(ours="this build", baseline="baseline build")
    for e in counts:
        t.add(f"webhook delivery, {e} endpoint(s): queued events drained per second",
              lambda e=e: (per_s(g(f"drain_ours_e{e}"), " events/s"), per_s(g(f"drain_base_e{e}"), " events/s"),
                           r.ratio("webhooks_baseline", f"drain_ours_e{e}", f"drain_base_e{e}")),
              target=1, short=f"webhook delivery to {e} endpoint(s) vs the baseline build")
    return ["Delivery of this build against an earlier one (`BENCH_BASELINE_REV`), in the same run: the "
            "two builds' extensions are installed in turn (a cluster restart each) and each build's own "
            f"webhook_bench drains the same queue, in {g('baseline_rev_rounds'):.0f} alternating rounds.",
            ""] + t.markdown()


STATS_LABELS = {
    "traffic_hour": "traffic, 24 h by hour", "traffic_day": "traffic, 30 days by day",
    "traffic_month": "traffic, 1 year by month", "top_endpoints": "top endpoints",
    "slowest_endpoints": "slowest endpoints", "top_ips": "top IPs", "latency_histogram": "latency histogram",
    "methods": "methods", "status": "status classes", "health": "health score", "kpis": "KPIs",
    "traffic_user_4xx": "traffic, one user, 4xx only",
}


def section_stats(r: Results) -> list[str]:
    g = lambda id: r.get("stats", id)  # noqa: E731
    rows_n = r.values.get("stats", {}).get("log_rows", 1_000_000)
    t = Table(ours="log_requests path", baseline="plain table")
    t.add(f"insert {rows_n:,.0f} log rows: partitioned request_log with its rollup trigger vs a plain table",
          lambda: (per_s(g("log_insert_rows_per_s"), " rows/s"), per_s(g("plain_insert_rows_per_s"), " rows/s"),
                   r.ratio("stats", "log_insert_rows_per_s", "plain_insert_rows_per_s")))
    lines = t.markdown()
    rows = []
    for key, label in STATS_LABELS.items():
        if r.has("stats", f"stats_{key}_ms"):
            v = g(f"stats_{key}_ms")
            TARGETS.append((f"stats: {label}", v < 100))
            rows.append([f"`{label}` on {rows_n:,.0f} log rows", ms(v), "< 100 ms", "yes" if v < 100 else "**no**"])
    if rows:
        lines += ["", "Each statistics function, best of three, timed inside the server (a requirement in "
                  "milliseconds, not a ratio: they read the hourly rollups, not the raw rows):", ""]
        lines += plain_table(["function", "time", "target", "met?"], rows)
    return lines


def section_logging(r: Results) -> list[str]:
    v = r.values.get("http_logging", {})
    names = {"ping": "GET /api/v1/ping", "list": "GET /api/v1/res.partner (5 records)"}
    t = Table(ours="requests/s", baseline="level `errors`", ratio="ratio")
    for w in ("ping", "list"):
        for level in ("metadata", "payloads"):
            t.add(f"{names[w]}, log level `{level}` ({v.get(f'logging_{level}_{w}_rows_per_request', 0):.2f} "
                  f"rows a request, {v.get(f'logging_{level}_{w}_dropped', 0):.0f} dropped)",
                  lambda w=w, level=level: (per_s(r.get("http_logging", f"logging_{level}_{w}_rps"), " req/s"),
                                            per_s(r.get("http_logging", f"logging_errors_{w}_rps"), " req/s"),
                                            r.ratio("http_logging", f"logging_{level}_{w}_rps",
                                                    f"logging_errors_{w}_rps")))
    return t.markdown()


FORWARD_CASES = (
    ("gateway", "through the gateway (caller's own Odoo API key)", 1.15),
    ("gateway_idem", "through the gateway, with an `Idempotency-Key` on every request", 1.15),
    ("gateway_jwt", "through the gateway as an OAuth2 client (JWT; its upstream key is forwarded)", None),
)


def section_forward(r: Results) -> list[str]:
    g = lambda id: r.get("forward", id)  # noqa: E731
    if r.has("forward", "skipped"):
        return ["Not measured: no Odoo 19 answered at `ODOO_URL` when `bench/forward.sh` ran (CI and most "
                "machines have none). Run it with `ODOO_URL`, `ODOO_DATABASE` and `DATABASE_URL` (Odoo's "
                "database with the extension) set, e.g. against `../shared/tools/odoo19-up.sh`."]
    conns = int(r.values["forward"].get("connections", 2))
    ops = {"create": "`res.partner` create (name, email)", "write": "`res.partner` write of one field (`ref`)"}
    t = Table(ours="time per request", baseline="JSON-2 directly", ratio="ratio (time)")
    for op, what in ops.items():
        for case, how, target in FORWARD_CASES:
            t.add(f"{what} {how}, {conns} connections",
                  lambda op=op, case=case: (ms(g(f"{op}_{case}_ms")), ms(g(f"{op}_direct_ms")),
                                            r.ratio("forward", f"{op}_{case}_ms", f"{op}_direct_ms")),
                  target=target, at_most=True, short=f"forwarded {op} {'with Idempotency-Key ' if case == 'gateway_idem' else ''}vs JSON-2 directly")
    lines = ["What `api-gateway serve --odoo-url` adds to Odoo's own time: the same JSON-2 call sent directly "
             "to Odoo and through the gateway, as the same Odoo user, same connections. Time per request = "
             "connections / throughput; the ratio is the median of the rounds' ratios (target: the gateway "
             "adds at most 15 %).", ""] + t.markdown()
    fw = r.values["forward"]
    if any(k.endswith("_gateway_cpu_us") for k in fw):
        rows = []
        for op, what in ops.items():
            try:
                odoo = g(f"{op}_direct_odoo_cpu_us")
            except Missing:
                continue
            for case, how, _ in FORWARD_CASES:
                try:
                    gw = g(f"{op}_{case}_gateway_cpu_us")
                    rows.append([f"{op}, {how}", us(gw), us(odoo), f"{gw / odoo:.1%}" if odoo else "—"])
                except Missing:
                    rows.append([f"{op}, {how}", "not measured", "", ""])
        lines += ["", "CPU time per request (from /proc, medians of the rounds; it hardly depends on the "
                  "machine's load, unlike the times above): the gateway's (the front and its PostgreSQL "
                  "backends) against Odoo's own for the direct call (Odoo's process and its backends):", ""]
        lines += plain_table(["case", "gateway CPU", "Odoo CPU (direct call)", "gateway / Odoo"], rows)
    try:
        lines += ["", "Median latency (wrk p50): " + "; ".join(
            f"{op} direct {ms(g(f'{op}_direct_p50_ms'))}, gateway {ms(g(f'{op}_gateway_p50_ms'))}, "
            f"with Idempotency-Key {ms(g(f'{op}_gateway_idem_p50_ms'))}" for op in ops) + "."]
    except Missing:
        pass
    return lines


SECTIONS = [
    ("The gate", "gate", section_gate),
    ("Rate limiting: concurrency and Redis", "rate_limit", section_rate_limit),
    ("Data access", "data", section_data),
    ("HTTP front", "http", section_http),
    ("Webhooks", "webhooks", section_webhooks),
    ("Traffic statistics", "stats", section_stats),
    ("Traffic log cost (HTTP front)", "http_logging", section_logging),
    ("Writes forwarded to Odoo", "forward", section_forward),
    ("Webhook delivery against an earlier build", "webhooks_baseline", section_webhooks_baseline),
]

METHOD = """\
## Method

Every figure has its baseline measured in the same run, on the same machine, just before or
after it; the machine is shared, so absolute numbers move with the load of the moment and only
the ratios are promised (they still move by about ±10-20 % between runs; a quick run's by more).
Most comparisons run in interleaved rounds: each round runs the workload next to its baseline,
the ratio shown is the median of the rounds' ratios and the figures shown are medians, so a
burst of load from something else on the machine spoils one round rather than the result.
`make bench` (bench/run.sh) installs what is missing, runs the scripts below one after the other,
each on its own scratch database `agw_bench*` dropped at its end, and writes this file with
bench/report.py from their JSON-lines results (target/bench/*.jsonl). `BENCH_QUICK=1 make bench`
does the same with short runs, for working on the scripts.

Load generators run one thread per client (`pgbench -j`, `redis-benchmark --threads`, `wrk -t`
equal to the clients or connections; bench/lib.sh `client_threads`), as independent application
workers would. With two threads for more clients on this 2-core machine, the scheduler paired
threads and backends across the cores at random when a run started and the run stayed in one of
two modes: the same function measured 0.5x and 0.9x `SELECT 1` in alternate runs, so a median of
three rounds told more about the pairing than about the function (`BENCH_CLIENT_THREADS=cores`
gives the old setting).

- `bench/gate.sh`: pgbench `-M prepared`, 4 clients unless stated, three rounds of 5 s runs; in
  each round `SELECT 1` runs first and last and the round's baseline is their mean; each
  `authenticate` run has its own, the mean of the `SELECT 1` runs just before and after it. The jwt_verify loop is 10,000 calls in one
  statement timed inside the server, minus an empty loop over the same rows; the pgjwt-style
  baseline is `bench/sql/pgjwt_baseline.sql` (pgcrypto `hmac`). passlib verifies the same 200
  Odoo-style hashes (pbkdf2_sha512, 6,000 rounds, as Odoo 19) the uncached `verify_api_key` run
  verifies, each key once, median of three passes / three fresh backends. The `authenticate`
  rows are compared with `rate_limit_hit` on one subject because the gate's own cost on top of
  its counter is what the target is about.
- `bench/rate_limit.sh`: three rounds; in each, for 1, 16 and 64 clients in turn: `SELECT 1`,
  `rate_limit_hit` over 10,000 random subjects and on one hot subject, PostgreSQL's own
  `pg_walfile_name_offset` called the same way (`bench/pgbench/c_function_floor.sql`; pgbench,
  prepared, 4 s), then the same two on Redis (`redis-benchmark`, as many connections and threads as pgbench
  clients and threads, as many calls as it answers in 4 s). Redis is started by the script on a free port of 127.0.0.1
  and a Unix socket in a temporary directory, persistence off, and shut down at the end; a
  64-client run is skipped, and says so here, when the shared cluster has no room for 64 more
  connections.
- `bench/data.sh`: the mini fixture plus 2,000 partners (`bench/sql/partners.sql`);
  `search_read(5, 'res.partner', '[]', 5 fields, N)` vs `bench/pgbench/search_read_handwritten.sql`
  with `LIMIT N` (record rule, active filter, the model's order, Odoo's `false` for empty values),
  which returns the identical JSON (checked); 4 clients, prepared, three rounds of 5 s runs
  alternating which of the two runs first. Then, when `../shared` has it, the real Odoo database
  (`odoo19_demo.sql.gz`): `search_read(uid, 'res.partner', '[["is_company", "=", true]]',
  '{name,email}', 10)` for admin, demo, portal and jeff (second company) against
  `bench/pgbench/real_handwritten.sql` (`real_handwritten_portal.sql` for the portal user: the
  portal rule's `child_of` as a recursive query), each checked to return the identical JSON; then
  1,000 rows (`[]`, 2,000 more partners loaded) for the internal users; and `SELECT 1`. Issue 20
  on the same database: 80 partners for demo (the added ones with a parent company and a
  country) with `display_name`, `parent_id`, `country_id` vs the 5 stored fields alone
  (`bench/pgbench/real_search_read_80.sql`, `real_search_read_display_80.sql`); with
  `BENCH_ODOO_URL`, `bench/odoo_fill.py`: a release `api-gateway serve --odoo-url`, one
  connection, 100 sequential requests per round and figure (median), three rounds alternating
  the order: product.product (80 at most) with and without `lst_price`, and Odoo's JSON-2 `read`
  of the same records and fields (`lst_price` checked equal first).
- `bench/http.sh`: `api-gateway serve` (release build, pool of 8, log level `errors`) under `wrk`
  (8 threads, 8 connections, after a warm-up that fills the pool and the key cache) vs pgbench with
  8 clients running `bench/pgbench/http_search_read.sql`: the very statements the front sends
  (gate, then data call, each alone as its own transaction: the front's connections have the
  statement timeout from their start-up packet, `--connection-settings`) with the same round
  trips and the same protocol (`-M prepared`: the front prepares its statements once per
  connection); that front runs with `--single-statement false` and its default worker threads
  (half the cores). Three rounds of 6 s runs. wrk, the front and
  PostgreSQL share the cores, as they would on one box. Then, on the real Odoo database, issue
  14's query as the admin (API key and JWT) through two fronts, `--single-statement false` and
  `true`, each against pgbench sending what that front sends
  (`http_real_search_read.sql`, `http_real_single.sql`), after checking that both answer
  `search_read`'s 10 records; in each round after the one-statement front, the floor relay
  (`front/examples/http_floor.rs`, release build, same statement and credential, checked to
  answer the same 10 records) under the same wrk (the fronts never take `ODOO_URL` from the
  script's environment); and, when `ODOO_URL` in `make bench`'s environment reaches an
  Odoo 19 (`ODOO_DATABASE`, `ODOO_KEY`: the demo database's admin key by default), its JSON-2
  `POST /json/2/res.partner/search_read` with the same domain, fields and limit under wrk (a Lua
  script, 8 connections) right after the gateway in each round, read only, and a fourth front,
  one statement with `--odoo-url` that Odoo, after the floor relay in each round.
- `bench/webhooks.sh`: pgbench single-row INSERTs into res_partner (simple protocol, 4 clients,
  5 s runs, 5 interleaved rounds, medians) with one active webhook vs none: with no worker, with
  an idle worker (running and polling, its requests hanging on an endpoint that never answers)
  and with the worker delivering every event to a local receiver. Delivery:
  the `webhook_bench` example (front/examples) runs the real worker and an axum receiver in one
  process, with 1, 10 and 100 webhooks on the model.
- `bench/stats.sh`: 1,000,000 generated log rows inserted through `api_gateway.request_log`
  (partitioned, rollup trigger) and into a plain copy of the table; each statistics function
  timed inside the server, best of three.
- `bench/http_logging.sh`: wrk, 16 connections, against the front at log levels `errors`
  (successful requests are not logged: the baseline), `metadata` and `payloads`, three interleaved
  rounds, medians.
- `bench/forward.sh` (only with a real Odoo 19 at `ODOO_URL`; skipped, and said so above, without
  one): wrk (`bench/wrk/forward.lua`), 2 connections, sends the same `res.partner` create (and a
  write of one field on a partner of its own per connection) to Odoo's `/json/2/` directly and
  to the gateway's REST route (release build, pool of 2, log level `errors`) with the same Odoo API
  key: plain, with a new `Idempotency-Key` on every request, and as an OAuth2 client. Five
  interleaved rounds of 5 s runs, the direct baseline first in odd rounds and last in even ones.
  When Odoo and PostgreSQL run on the same host, the CPU time of the front and its backends and
  of Odoo and its backends is read from /proc around each run.
- `bench/webhooks_baseline.sh` (only with `BENCH_BASELINE_REV`, e.g. 856a07d for 0.4.0): this
  build's and that build's extensions installed in turn (a cluster restart each, a fresh database
  from the mini fixture), each draining 20,000 queued events with its own `webhook_bench` at 1, 10
  and 100 endpoints; rounds alternate which build goes first.
"""


def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_facts(r: Results) -> list[str]:
    # Facts run.sh recorded while it ran (bench/run.sh: target/bench/run.env), when there are any.
    run = {}
    if (r.dir / "run.env").exists():
        run = dict(line.split("=", 1) for line in (r.dir / "run.env").read_text().splitlines() if "=" in line)
    cpu = "unknown"
    mem = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    commit = run.get("commit") or sh("git", "rev-parse", "--short", "HEAD") or "unknown"
    # (this page itself is rewritten by the run, so it does not count as a change)
    if "commit" not in run and sh("git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  ":!docs/benchmarks.md"):
        commit += " (with uncommitted changes)"
    pg = sh("psql", "-X", "-At", "-d", "postgres", "-c", "SHOW server_version") or "unknown"
    ext = sh("psql", "-X", "-At", "-d", "postgres", "-c",
             "SELECT default_version FROM pg_available_extensions WHERE name = 'api_gateway'") or "unknown"
    redis = sh("redis-server", "--version").split(" v=")[-1].split()[0] if sh("redis-server", "--version") else "not installed"
    wrk = sh("sh", "-c", "wrk -v 2>&1 | head -1").split(" [")[0] or "not installed"
    # The whole `make bench` as run.sh recorded it, else the scripts' own time.
    total = float(run.get("elapsed_s") or sum(s for _, s in r.status.values()))
    quick = run.get("quick", os.environ.get("BENCH_QUICK", "0")) == "1"
    facts = [
        f"- date: {run.get('started') or f'{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC'}"
        + (f", {total / 60:.0f} minutes for the whole `make bench`" if total else ""),
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem} RAM, shared with other work "
        f"(load average {run.get('loadavg_start', '?')} at the start, "
        f"{run.get('loadavg_end') or ' '.join(open('/proc/loadavg').read().split()[:3])} at the end)",
        f"- PostgreSQL {pg}; api_gateway {ext} (the installed build"
        + (f"; it was {run['extension_start']} when the run started: someone installed another build meanwhile"
           if run.get("extension_start", ext) != ext else "") + f"); commit {commit}",
        f"- baselines' software: Redis {redis}, {wrk}, pgbench {pg.split()[0]}, Python passlib 1.7.4",
    ]
    if quick:
        facts.append("- **quick mode** (`BENCH_QUICK=1`): runs of a few seconds, fewer rounds; the ratios are "
                     "indicative only")
    return facts


def main(results_dir: Path, out: Path) -> None:
    r = Results(results_dir)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/run.sh, then bench/report.py); do not edit by hand, run it again.",
        "Each workload is next to a baseline measured in the same run on this machine, and the ratio is "
        "what this page promises: absolute figures depend on the machine and its load of the moment. "
        "Targets come from the project's issues; a missed one says **no**. Where a comparison ran in "
        "several interleaved rounds, \"ours\" and \"baseline\" are the medians of the rounds and the ratio "
        "is the median of the rounds' own ratios, so it can differ from ours ÷ baseline: each round's "
        "workload is compared with the baseline run next to it.",
        "",
    ] + machine_facts(r)
    for title, script, build in SECTIONS:
        lines += ["", f"## {title}", ""]
        status = r.status.get(script)
        if script not in r.values:
            lines.append(f"Not measured: `{SCRIPTS[script]}` did not run"
                         + (f" (it failed with status {status[0]}; see its output)" if status else "") + ".")
            continue
        try:
            lines += build(r)
        except Exception as e:  # one section's bug must not cost the other sections
            lines.append(f"(bench/report.py could not build this section: {type(e).__name__}: {e})")
            print(f"report.py: section {title}: {type(e).__name__}: {e}", file=sys.stderr)
        if status and status[0] != 0:
            lines += ["", f"`{SCRIPTS[script]}` failed (status {status[0]}) after these results; "
                          "rows it did not reach say \"not measured\"."]
        # a script run again on its own later has results of another date than the page's
        results = r.dir / f"{script}.jsonl"
        written = datetime.fromtimestamp(results.stat().st_mtime, timezone.utc)
        same_run = status and (r.dir / f"{script}.status").stat().st_mtime >= results.stat().st_mtime - 60
        lines += ["", f"<sub>{SCRIPTS[script]}" + (f": {status[1] / 60:.1f} min" if same_run else "")
                  + f", results of {written:%Y-%m-%d %H:%M} UTC</sub>"]
    missed = [w for w, ok in TARGETS if not ok]
    summary = [f"**Targets met: {len(TARGETS) - len(missed)} of {len(TARGETS)}.**"
               + (" Missed: " + "; ".join(missed) + "." if missed else "")]
    lines[lines.index("## The gate") - 1:lines.index("## The gate") - 1] = [""] + summary
    lines += ["", METHOD]
    text = "\n".join(lines).rstrip() + "\n"
    out.write_text(text)
    missing = [s for s in SCRIPTS if s not in r.values]
    print(f"report.py: wrote {out}" + (f" (not measured: {', '.join(missing)})" if missing else ""), file=sys.stderr)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) > 2 or (args and args[0] in ("-h", "--help")):
        sys.exit(__doc__)
    main(Path(args[0]) if args else ROOT / "target" / "bench",
         Path(args[1]) if len(args) > 1 else ROOT / "docs" / "benchmarks.md")
