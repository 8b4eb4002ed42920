"""Statements of services (`server/services.py`): named layer defaults, and the layers that name them."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select, update

from thresher.server.db.tables import services

# Every service, by name (a short list: one per application or kind of work).
ALL_SERVICES = select(services).order_by(services.c.name)
# A service by name.
SERVICE_BY_NAME = select(services).where(services.c.name == bindparam("name"))
# A new service.
INSERT_SERVICE = insert(services)
# A service's defaults replaced.
UPDATE_SERVICE = update(services).where(services.c.name == bindparam("b_name")).values(
    defaults=bindparam("b_defaults"))
# A service gone.
DELETE_SERVICE = delete(services).where(services.c.name == bindparam("name"))
