"""Scheduled changes and progressive rollouts.

- ``service.py``: schedule a change of a variable for a time (label move, rollout weights, targeting, a change
  request's apply), list and cancel; what each kind does when it runs.
- ``rollouts.py``: progressive rollouts ("raise label L from A% to B% in N steps every T"), each step a schedule.
- ``runner.py``: ``run_due(ctx)`` runs the due work exactly once (row locks), ``ScheduleRunner`` is the server's
  background thread calling it.
- ``intx.py``: runs ordinary service functions inside the runner's transaction.
"""
