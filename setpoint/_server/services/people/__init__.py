"""People, roles and memberships: who may do what, checked in one place for the web UI and the API.

- :mod:`.roles`: the roles (``viewer`` < ``editor`` < ``admin`` per project, ``owner`` per instance) and
  :func:`~.roles.require`, which every API dependency and web view calls.
- :mod:`.actors`: how the audit names a person, or a key of a person.
- :mod:`.service`: people, invites and password resets, deactivation, logins.
- :mod:`.members`: a project's members and their roles.
- :mod:`.protected`: protected labels (only ``admin`` moves them or changes the targeting that serves them).
"""
