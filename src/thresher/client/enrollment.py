"""The enrollment-token calls of the Python API (admins), beside `client/api.py`'s `Thresher`:
`EnrollTokens(thresher.http)`. Each path is spelled once, here."""

from __future__ import annotations

from thresher.client.http import HttpClient
from thresher.wire.common import Page
from thresher.wire.enrollment import EnrollToken, EnrollTokenCreated


class EnrollTokens:
    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def create(self, name: str, *, one_time: bool = False, expires_in_days: float | None = None,
               pool: str | None = None) -> EnrollTokenCreated:
        """A new enrollment token; its `secret` is in this answer only."""
        return EnrollTokenCreated.model_validate(self.http.post("/enroll-tokens", json={
            "name": name, "one_time": one_time, "expires_in_days": expires_in_days, "pool": pool}))

    def list(self) -> list[EnrollToken]:
        return Page[EnrollToken].model_validate(self.http.get("/enroll-tokens")).items

    def revoke(self, token_id: int) -> EnrollToken:
        return EnrollToken.model_validate(self.http.request("DELETE", f"/enroll-tokens/{token_id}"))
