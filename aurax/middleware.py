import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .logging import request_id_for, request_id_var

logger = logging.getLogger("aurax.request")


class RequestIdMiddleware:
    """Give each request an id (the caller's `X-Request-ID` if sane), log it, return it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request):
        request.id = request_id_for(request.headers.get("X-Request-ID", ""))
        return request_id_var.set(request.id), time.perf_counter()

    def _finish(self, request, response, token, started):
        response["X-Request-ID"] = request.id
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        request_id_var.reset(token)
        return response

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token, started = self._start(request)
        return self._finish(request, self.get_response(request), token, started)

    async def __acall__(self, request):
        token, started = self._start(request)
        return self._finish(request, await self.get_response(request), token, started)
