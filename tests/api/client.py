"""A test client for /v1, which is served by its own ASGI app rather than Django's URLconf:
the whole ASGI application in-process through httpx, with Django test-client-like calls."""

import json as jsonlib

import httpx


class Response:
    def __init__(self, response: httpx.Response):
        self._response = response
        self.status_code = response.status_code
        self.content = response.content
        self.headers = response.headers

    def __getitem__(self, name):
        return self._response.headers[name]

    def json(self):
        return jsonlib.loads(self.content)

    @property
    def streaming_content(self):
        async def chunks():
            yield self.content

        return chunks()


class AsyncClient:
    def _client(self):
        from aurax.asgi import application

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        )

    async def post(self, path, data=None, content_type="application/json", headers=None):
        async with self._client() as client:
            body = data.encode() if isinstance(data, str) else data
            return Response(
                await client.post(
                    path, content=body, headers={"content-type": content_type, **(headers or {})}
                )
            )

    async def get(self, path, headers=None):
        async with self._client() as client:
            return Response(await client.get(path, headers=headers or {}))

    async def delete(self, path, headers=None):
        async with self._client() as client:
            return Response(await client.delete(path, headers=headers or {}))
