"""The PostgreSQL and Redis servers of a system run: reachable?, a clean slate, and how many
connections a database has (pg_stat_activity). Also the plain-text tables runs print."""

import math
from collections.abc import Sequence

import dj_database_url


def unreachable(database_url: str, redis_url: str, *, dbname: str = "postgres") -> str:
    """Why the PostgreSQL server or Redis of these URLs does not answer; "" when both do.
    `dbname`: the database to connect to (the server's own by default: a run that recreates
    its database checks the server, `make test` its test database's)."""
    import psycopg
    import redis

    db = dj_database_url.parse(database_url)
    try:
        psycopg.connect(**_pg_args(db, dbname), connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {db['HOST']}:{db['PORT']} does not answer: {exc}".strip()
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {redis_url} does not answer: {exc}"
    return ""


def recreate_postgres_database(database_url: str) -> None:
    """Drop (disconnecting its clients) and create the database the URL names: a clean slate."""
    import psycopg
    from psycopg import sql

    db = dj_database_url.parse(database_url)
    with psycopg.connect(**_pg_args(db, "postgres"), autocommit=True, connect_timeout=5) as conn:
        name = sql.Identifier(db["NAME"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def connections_to(database_url: str, conn=None) -> int:
    """How many server connections the database of this URL has now (pg_stat_activity)."""
    import psycopg

    db = dj_database_url.parse(database_url)
    own = conn is None
    conn = conn or psycopg.connect(**_pg_args(db, "postgres"), autocommit=True, connect_timeout=5)
    try:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        return int(row[0])
    finally:
        if own:
            conn.close()


def monitor_connection(database_url: str):
    """An autocommit connection to the server's `postgres` database, for sampling."""
    import psycopg

    db = dj_database_url.parse(database_url)
    return psycopg.connect(**_pg_args(db, "postgres"), autocommit=True, connect_timeout=5)


def _pg_args(db: dict, dbname: str) -> dict:
    return {
        "dbname": dbname,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "host": db["HOST"],
        "port": db["PORT"] or 5432,
    }


def with_database_name(database_url: str, name: str) -> str:
    """The same server URL with another database name."""
    base, _, _ = database_url.rpartition("/")
    return f"{base}/{name}"


def flush_redis(redis_url: str) -> None:
    """Empty the Redis database of this URL (old queue messages must not reach a new run)."""
    import redis

    redis.Redis.from_url(redis_url, socket_connect_timeout=3).flushdb()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (Markdown pipe layout, so docs can paste it as is)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
