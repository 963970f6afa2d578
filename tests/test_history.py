"""History that cannot be rewritten (docs/history.md): events are append-only in the ORM and,
on PostgreSQL, by a trigger; one narrow redaction; who changed services, tokens, calendars
and groups in the admin."""

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.test import TestCase

from tests.factories import make_definition, make_service, make_user, start
from workflows_app.models import ApiToken, BusinessCalendar, Event, HistoryIsAppendOnly, Service
from workflows_app.runtime import redaction

WAIT = {"id": "wait", "steps": [{"id": "approve", "service": "approvalSvc"}]}


def an_event() -> Event:
    make_service("approvalSvc", "human")
    instance = start(make_definition(WAIT), {"applicant": "Ada"})
    return Event.objects.create(
        instance=instance, type=Event.Type.CLAIMED, step="approve", actor="user:ada",
        detail={"note": "Ada's phone is 555-0100"},
    )  # fmt: skip


class AppendOnlyInTheOrmTests(TestCase):
    def test_a_saved_event_cannot_be_changed(self):
        event = an_event()
        event.result = "approved"
        with pytest.raises(HistoryIsAppendOnly, match="never changed or deleted"):
            event.save()

    def test_an_event_cannot_be_deleted_one_by_one_or_in_bulk(self):
        event = an_event()
        with pytest.raises(HistoryIsAppendOnly):
            event.delete()
        with pytest.raises(HistoryIsAppendOnly):
            Event.objects.filter(pk=event.pk).delete()
        with pytest.raises(HistoryIsAppendOnly):
            Event.objects.filter(pk=event.pk).update(step="other")
        assert Event.objects.filter(pk=event.pk, step="approve").exists()

    def test_redaction_blanks_free_text_and_keeps_the_shape_of_the_history(self):
        event = an_event()
        count = Event.objects.filter(instance=event.instance).count()
        assert redaction.redact_events(instance_ids=[event.instance_id]) == count
        event.refresh_from_db()
        assert (event.type, event.step, event.actor, event.detail) == (
            "claimed",
            "approve",
            "",
            {"redacted": True},
        )
        assert Event.objects.filter(instance=event.instance).count() == count

    def test_redaction_may_not_touch_anything_but_free_text(self):
        event = an_event()
        with pytest.raises(HistoryIsAppendOnly, match="can be redacted"):
            redaction.redact_events(instance_ids=[event.instance_id], fields={"result": "x"})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL")
class AppendOnlyInPostgresqlTests(TestCase):
    def refused(self, sql: str, params) -> None:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)

    def test_the_trigger_refuses_update_and_delete_even_in_raw_sql(self):
        event = an_event()
        self.refused("UPDATE workflows_app_event SET step = 'x' WHERE id = %s", [event.pk])
        self.refused("DELETE FROM workflows_app_event WHERE id = %s", [event.pk])
        self.refused("UPDATE workflows_app_event SET actor = '' WHERE id = %s", [event.pk])

    def test_redacting_passes_the_trigger_but_only_for_free_text(self):
        event = an_event()
        redaction.redact_events(instance_ids=[event.instance_id])
        event.refresh_from_db()
        assert event.actor == "" and event.detail == {"redacted": True}
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('hms.redacting', 'on', true)")
            self.refused("UPDATE workflows_app_event SET type = 'x' WHERE id = %s", [event.pk])


class ChangeHistoryTests(TestCase):
    def setUp(self):
        self.admin = make_user("boss", is_staff=True, is_superuser=True)
        self.client.force_login(self.admin)

    def test_an_admin_change_to_a_token_is_recorded_with_who_made_it(self):
        token, _ = ApiToken.issue("portal")
        response = self.client.post(
            f"/admin/workflows_app/apitoken/{token.pk}/change/",
            {"name": "citizen portal", "scopes": ["start"], "workflows": "", "acting_for": ""},
        )
        assert response.status_code == 302, response.content
        latest = token.history.first()
        assert (latest.history_user, latest.history_type, latest.name) == (
            self.admin,
            "~",
            "citizen portal",
        )
        assert not hasattr(latest, "key_hash")  # the hash is not copied into the history
        page = self.client.get(f"/admin/workflows_app/apitoken/{token.pk}/history/")
        assert page.status_code == 200 and "boss" in page.content.decode()

    def test_a_new_group_and_a_service_changed_by_the_loader_are_recorded(self):
        response = self.client.post("/admin/auth/group/add/", {"name": "fire-reviewers"})
        assert response.status_code == 302
        group = Group.objects.get(name="fire-reviewers")
        assert group.history.get().history_user == self.admin
        service = make_service("validationSvc", "http", url="http://127.0.0.1:9/v")
        Service.objects.filter(pk=service.pk)  # the loader saves through the ORM: recorded
        service.url = "http://127.0.0.1:9/v2"
        service.save()
        assert [h.url for h in service.history.all()] == [
            "http://127.0.0.1:9/v2",
            "http://127.0.0.1:9/v",
        ]
        assert not hasattr(service.history.first(), "secret")

    def test_the_business_calendar_keeps_its_history(self):
        calendar = BusinessCalendar.objects.create(name="Office hours")
        calendar.holidays = "2026-12-25"
        calendar.save()
        assert calendar.history.count() == 2
        page = self.client.get(f"/admin/workflows_app/businesscalendar/{calendar.pk}/history/")
        assert page.status_code == 200
