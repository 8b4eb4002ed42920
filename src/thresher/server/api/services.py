"""Routes of services (admin token): named layer defaults. Thin: `server/services.py` does the work, each
change in one write transaction, and the answer is read after the commit. A service's defaults are
applied at submit (`model/services.py`), so a change reaches only jobs submitted after it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from thresher.server import services as admin
from thresher.server.api.people import NodeIdent
from thresher.server.context import ctx
from thresher.server.permits import permit
from thresher.wire import services as w
from thresher.wire.common import Page, error_responses

router = APIRouter()

_AUTH = (401, 403, 422)
PathName = NodeIdent  # a name in the path: no control characters (unknown names are 404)


@router.get("/services", summary="List services with their defaults", operation_id="list_services", dependencies=[permit("studio.read")],
            tags=["studio"], response_model=Page[w.Service], responses=error_responses(*_AUTH))
def list_services(request: Request) -> Page[w.Service]:
    with ctx(request).db.read() as conn:
        items = admin.list_services(conn)
    return Page[w.Service](items=items, total=len(items))  # tens: one page holds them all


@router.post("/services", status_code=201, summary="Add a service", operation_id="create_service", dependencies=[permit("service.manage")],
             tags=["studio"], response_model=w.Service, responses=error_responses(*_AUTH, 409))
def create_service(request: Request, body: w.ServiceCreate) -> w.Service:
    server = ctx(request)
    with server.db.write() as conn:
        admin.create_service(conn, body)
    with server.db.read() as conn:
        return admin.get_service(conn, body.name)


@router.get("/services/{name}", summary="One service", operation_id="get_service", dependencies=[permit("studio.read")], tags=["studio"],
            response_model=w.Service, responses=error_responses(*_AUTH, 404))
def get_service(request: Request, name: PathName) -> w.Service:
    with ctx(request).db.read() as conn:
        return admin.get_service(conn, name)


@router.patch("/services/{name}", summary="Change a service's defaults (for jobs submitted from now on)",
              operation_id="update_service", dependencies=[permit("service.manage")], tags=["studio"], response_model=w.Service,
              responses=error_responses(*_AUTH, 404))
def update_service(request: Request, name: PathName, body: w.ServicePatch) -> w.Service:
    server = ctx(request)
    with server.db.write() as conn:
        admin.update_service(conn, name, body)
    with server.db.read() as conn:
        return admin.get_service(conn, name)


@router.delete("/services/{name}", summary="Remove a service (jobs that took its defaults keep them); "
               "answers it as it was", operation_id="delete_service", dependencies=[permit("service.manage")], tags=["studio"], response_model=w.Service,
               responses=error_responses(*_AUTH, 404))
def delete_service(request: Request, name: PathName) -> w.Service:
    with ctx(request).db.write() as conn:
        gone = admin.get_service(conn, name)
        admin.delete_service(conn, name)
    return gone
