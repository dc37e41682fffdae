"""Apps above workspaces (chat, providers, billing) cannot be called from here; they listen."""

from django.dispatch import Signal

# Sent inside the transaction, before the membership row is deleted: workspace=, user=.
member_removed = Signal()

# Sent once a change that turns a workspace's response cache off or on has committed:
# workspace=.
response_cache_switched = Signal()

# Sent to learn which models a workspace's members may pick: workspace=. Each receiver returns
# a list of {"value", "label"}; the settings form offers them as the workspace's default model.
workspace_models_requested = Signal()
