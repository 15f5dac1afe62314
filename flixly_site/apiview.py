"""The base of the /api/v1 endpoints: each names the query parameters it reads and refuses any other."""

from typing import Any

from rest_framework.request import Request
from rest_framework.views import APIView

from flixly_site.errors import ValidationFailed
from flixly_site.parsers import unknown_fields

PAGE_QUERY = ("cursor", "limit")


def refuse_unknown_query(request: Request, known: tuple[str, ...]) -> None:
    """A 422 naming the query parameters outside `known`, as an unknown body field is one: a misspelt filter
    (`?stauts=failed`) must not answer as if there were no filter. Likewise one given twice, since each takes
    one value and Django would silently keep the last."""
    query = request.query_params
    if not query:  # most requests: nothing to check
        return
    unknown = set(query) - set(known)
    if unknown:
        takes = f"This endpoint takes {', '.join(known)}." if known else "This endpoint takes no query parameters."
        raise ValidationFailed(details=unknown_fields(unknown, noun="query parameter", rest="query", hint=f" {takes}"))
    if repeated := sorted(name for name, values in query.lists() if len(values) > 1):
        raise ValidationFailed(details={name: [f"Give '{name}' once; it takes one value."] for name in repeated})


class ApiView(APIView):
    """An /api/v1 endpoint; `query_names` are the query parameters each of its methods reads ("get": ...),
    so a create does not take its list's `?limit=` as if it meant something."""

    query_names: dict[str, tuple[str, ...]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # the key, its scope and the rate limit come first
        method = "get" if request.method == "HEAD" else request.method.lower()  # HEAD runs the GET handler
        refuse_unknown_query(request, self.query_names.get(method, ()))
