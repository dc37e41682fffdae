from django.core.management.base import BaseCommand

from chat.services import messages_interrupted_mark


class Command(BaseCommand):
    help = (
        "Mark answers left 'streaming' by a dead server process as interrupted, keeping the "
        "text saved so far. Run at start-up; --all when no other server process is running."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every streaming answer is dead")

    def handle(self, *args, all: bool = False, **options):
        count = messages_interrupted_mark(all_streaming=all)
        self.stdout.write(f"{count} interrupted answer(s) marked.")
