"""A hello-world JSON endpoint on Herald's server stack: the ceiling the events API is compared with."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from herald.serve import uvicorn_options

BODY = b'{"hello": "world"}'


async def hello(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # NOTE: `herald serve`'s own uvicorn options (uvloop, httptools, no access log, one worker), so the
    # ratio compares the applications, not the stacks.
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, workers=1, **uvicorn_options())  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
