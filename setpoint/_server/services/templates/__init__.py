"""Templates and composition on the server: write-time checks of ``@{references}@`` and ``{{fields}}``, and
"used by" (which variables reference a variable). The checks are per variable: the changed variable's own
references (walked through the referenced variables' served values), and for delete/rename the variables that
reference it (found with one pre-filtering query, then parsed)."""

from setpoint._server.services.templates.preview import preview
from setpoint._server.services.templates.references import (
    check_composition,
    check_not_referenced,
    references_of,
    served_values,
    used_by,
)

__all__ = ["check_composition", "check_not_referenced", "preview", "references_of", "served_values", "used_by"]
