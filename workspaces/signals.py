"""Apps above workspaces (chat, providers, billing) cannot be called from here; they listen."""

from django.dispatch import Signal

# Sent inside the transaction, before the membership row is deleted: workspace=, user=.
member_removed = Signal()
