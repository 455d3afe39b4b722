"""The web console (issue 13, section 1): server-rendered pages (Jinja2) with htmx, served by the gateway at
``/console`` on the same origin, with the same principals and permissions as the REST API.

``htmx.min.js`` in ``static/`` is htmx.org 2.0.11 (licence: ``static/htmx.LICENSE.txt``, Zero-Clause BSD),
fetched with ``npm pack htmx.org@2.0.11`` (files ``package/dist/htmx.min.js`` and ``package/LICENSE``); there
is no build step and no CDN.
"""

from __future__ import annotations

from fastapi import APIRouter

from kubernaut.gateway.console import pages, signin

ROUTERS: tuple[APIRouter, ...] = (signin.router, pages.router)
