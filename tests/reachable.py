"""Exit 0 when the PostgreSQL and Redis URLs given answer; say which does not otherwise."""

import sys

import dj_database_url
import psycopg
import redis


def main(database_url: str, redis_url: str) -> int:
    db = dj_database_url.parse(database_url)
    try:
        psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            host=db["HOST"],
            port=db["PORT"] or 5432,
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        print(f"   PostgreSQL at {db['HOST']}:{db['PORT']} does not answer: {exc}".rstrip())
        return 1
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        print(f"   Redis at {redis_url} does not answer: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
