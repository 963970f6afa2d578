"""A forked process (qcluster forks its workers) opens its own PostgreSQL connections and
leaves its parent's alone (workflows_app/apps.py, docs/deploy.md: database connections)."""

import os

import pytest
from django.db import connection
from django.test import TransactionTestCase


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: runs in the PostgreSQL + Redis pass of `make test`",
)
class ForkTests(TransactionTestCase):
    def backend_pid(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def test_a_forked_child_queries_on_a_session_of_its_own_and_the_parents_still_works(self):
        parent = self.backend_pid()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the child: answer with its session's pid, then leave at once
            try:
                os.write(write, str(self.backend_pid()).encode())
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 64).decode()
        os.close(read)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert answer.isdigit() and int(answer) != parent
        assert self.backend_pid() == parent  # the parent's session survived the child's exit
