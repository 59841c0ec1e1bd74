"""Live events: what changed in a job or a sweep, learnt from the database and streamed.

`hub.EventHub` is the one fan-out of an API process: a single task learns which followed
jobs changed (PostgreSQL LISTEN/NOTIFY, or a cheap primary-key poll on SQLite), reads each
change once and hands it to every stream following that job. `streams` opens the streams the
routes serve; `timeline` turns reads into events and ids (`cursors`) that resume exactly.
"""
