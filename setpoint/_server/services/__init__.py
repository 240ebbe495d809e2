"""Business rules shared by the JSON API and the HTML views: validation, concurrency, audit, change events."""
