from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from . import api, front, inbox, respond, task_actions, track_find, tracker
from . import board as board_views
from . import reports as report_views
from .health import healthz
from .metrics import metrics

app_name = "workflows"

urlpatterns = [
    path("", front.home, name="home"),
    path("api/workflows/start", api.start, name="api-start"),
    path("api/workflows/<str:instance_id>/status", api.status, name="api-status"),
    path("api/workflows/<str:instance_id>/cancel", api.cancel, name="api-cancel"),
    path("api/workflows/<str:instance_id>/retry", api.retry, name="api-retry"),
    path("api/workflows/<str:instance_id>/documents", api.upload_document, name="api-documents"),
    path("api/documents/<str:document_id>", api.get_document, name="api-document"),
    path("api/tasks/<str:task_id>/complete", api.complete_task, name="api-complete-task"),
    path("api/openapi.json", api.openapi, name="api-openapi"),
    re_path(r"^api/", api.not_found),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("track/", track_find.track_find, name="track-find"),
    path("track/<str:instance_id>/", tracker.track, name="track"),
    path("track/<str:instance_id>/new-link", respond.new_link, name="track-new-link"),
    path("track/<str:instance_id>/respond/<str:token>/", respond.respond, name="track-respond"),
    path(
        "track/<str:instance_id>/respond/<str:token>/documents/<uuid:document_id>",
        respond.applicant_document,
        name="track-document",
    ),
    path("board/", board_views.board, name="board"),
    path("tasks/", inbox.inbox, name="inbox"),
    path("tasks/<uuid:run_id>/", inbox.task, name="task"),
    path(
        "tasks/<uuid:run_id>/documents/<uuid:document_id>",
        inbox.task_document,
        name="task-document",
    ),
    path("tasks/<uuid:run_id>/claim", task_actions.claim, name="task-claim"),
    path("tasks/<uuid:run_id>/release", task_actions.release, name="task-release"),
    path("tasks/<uuid:run_id>/decide", task_actions.decide, name="task-decide"),
    path("tasks/<uuid:run_id>/reassign", task_actions.reassign, name="task-reassign"),
    # Supervisors' reports (docs/reports.md).
    path("reports/", report_views.on_time, name="reports"),
    path("reports/backlog/", report_views.backlog, name="reports-backlog"),
    path("reports/workload/", report_views.workload, name="reports-workload"),
    path("reports/durations/", report_views.durations, name="reports-durations"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True,
            extra_context={"oidc_enabled": settings.OIDC_ENABLED},  # docs/deploy.md
        ),
        name="login",
    ),
    path(
        "accounts/logout/",
        auth_views.LogoutView.as_view(next_page="workflows:login"),
        name="logout",
    ),
]
