"""The team's own models package: here, who owns which registered model.

Its name is the one kerasflow's source tree uses for its own `models/` folder; kerasflow
installs that one as `kerasflow.models`, so this one is never shadowed.
"""

OWNERS = {"team-digits": "vision-team@example.com"}


def owner_of(model_name: str) -> str:
    return OWNERS.get(model_name, "ml-platform@example.com")
