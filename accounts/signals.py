"""Apps above accounts (workspaces, providers, chat) cannot be called from here; they listen."""

from django.dispatch import Signal

# Sent to learn which models a user may pick as their default, in the workspace they are
# working in: request= (the session names that workspace). Each receiver returns a list of
# {"value", "label"}; the preferences form offers them as the user's default model.
user_models_requested = Signal()
