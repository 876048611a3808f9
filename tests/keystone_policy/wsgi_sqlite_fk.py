"""Keystone's WSGI application with SQLite foreign keys enforced (test harness only).

SQLite ignores ``ON DELETE CASCADE`` unless the connection enables foreign keys, and oslo.db
leaves them off. Keystone's bulk deletes (a user's application credentials when the user is
deleted or loses its role) then orphan their ``application_credential_role`` rows; SQLite
reuses the freed row id for the next credential, whose role insert fails with "Duplicate
entry found with name ..." (409). MySQL and PostgreSQL, which production Keystones use,
enforce the cascade — so the test Keystone must too. Keystone's own test suite switches the
pragma on the same way.
"""

from keystone.common.sql import core
from keystone.server.wsgi import initialize_public_application

core.enable_sqlite_foreign_key()
application = initialize_public_application()
