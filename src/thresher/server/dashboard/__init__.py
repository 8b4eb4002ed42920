"""The web dashboard: login, pages, live updates, previews (templates and static files in thresher/web)."""
