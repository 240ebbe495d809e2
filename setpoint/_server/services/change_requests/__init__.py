"""Change requests (four-eyes review): when a project's review settings say so, a change of a protected label,
a rollout or an override rule does not apply; it becomes a request that another person approves, and that is
then applied atomically at the revision it was based on (`review` decides, `service` runs the lifecycle)."""
