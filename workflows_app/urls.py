from django.urls import path, re_path

from .views import api

app_name = "workflows"

urlpatterns = [
    path("api/workflows/start", api.start, name="api-start"),
    path("api/workflows/<str:instance_id>/status", api.status, name="api-status"),
    path("api/workflows/<str:instance_id>/cancel", api.cancel, name="api-cancel"),
    path("api/workflows/<str:instance_id>/retry", api.retry, name="api-retry"),
    path("api/tasks/<str:task_id>/complete", api.complete_task, name="api-complete-task"),
    path("api/openapi.json", api.openapi, name="api-openapi"),
    re_path(r"^api/", api.not_found),
]
