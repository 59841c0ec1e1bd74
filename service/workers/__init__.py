"""Who executes jobs: local worker processes or Celery workers, around the one JobRunner."""
