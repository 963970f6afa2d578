from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WorkflowsConfig(AppConfig):
    name = "workflows_app"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
        from django.utils.translation import get_language
        from django_q.signals import post_spawn

        from .definitions import languages, parse_size

        # Language maps in definitions use the site's languages; shown in the active one.
        languages.configure(codes=[code for code, _ in settings.LANGUAGES], active=get_language)

        try:
            parse_size(settings.HMS_MAX_UPLOAD)
        except ValueError as error:
            raise ImproperlyConfigured(f"HMS_MAX_UPLOAD: {error}") from None

        from .runtime import schedules, ticker

        post_spawn.connect(ticker.start_timer_thread, dispatch_uid="hms-timer-thread")
        post_migrate.connect(schedules.ensure_schedules, sender=self)
