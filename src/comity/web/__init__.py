"""The operator's web UI under ``/ui/``: accounts, roles, sessions and pages.

Server-rendered with Jinja2 and htmx (served from the node itself: no page
loads anything from a third party, which would tell it who operates the node
and when). Every action checks a role and a CSRF token and is written to the
audit trail.
"""

__all__: list[str] = []
