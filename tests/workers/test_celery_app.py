"""The Celery settings that make hour-long CPU tasks safe."""

from service.config import Settings
from service.workers.celery_app import QUEUE, TASK_NAME, make_celery, register_task


def test_settings_for_long_cpu_bound_tasks():
    settings = Settings(celery_task_time_limit=7200)
    conf = make_celery(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and list(conf.accept_content) == ["json"]
    assert conf.task_time_limit == 7200
    # The broker must never redeliver a task that may still be running.
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.task_default_queue == QUEUE


def test_visibility_timeout_outlasts_any_configured_time_limit():
    for limit in (60.0, 3600.0, 86400.0, 7 * 86400.0):
        settings = Settings(celery_task_time_limit=limit)
        assert settings.celery_visibility_timeout > limit


def test_the_task_is_a_thin_wrapper_around_the_runner():
    app = make_celery(Settings())
    calls = []
    register_task(app, lambda job_id, **options: calls.append((job_id, options)))
    app.tasks[TASK_NAME].run("job-1")
    assert calls == [("job-1", {"or_oldest": True})]
    assert app.tasks[TASK_NAME].acks_late is True
