"""Serve the fake model provider (providers/fake_upstream.py) for development and benchmarks."""

import uvicorn
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the fake upstream speaking the OpenAI, Anthropic, Gemini and Ollama protocols."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8900)

    def handle(self, *args, host, port, **options):
        from providers.fake_upstream import FakeUpstream

        base = f"http://{host}:{port}"
        self.stdout.write(
            f"fake upstream on {base}\n"
            f"  OpenAI-compatible base URL {base}/v1\n"
            f"  Anthropic base URL         {base}\n"
            f"  Gemini base URL            {base}/v1beta\n"
            f"  Ollama base URL            {base}\n"
            "  directives: see providers/fake_upstream.py"
        )
        app = FakeUpstream(keep_requests=False)
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off")
