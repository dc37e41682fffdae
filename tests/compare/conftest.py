from tests.chat.conftest import alice  # noqa: F401  the socket tests' user
from tests.gateway.conftest import (  # noqa: F401  shared with the pipeline tests
    _fast_providers,
    _shared_http_client_closed,
    credential,
    fake_small_priced,
)
