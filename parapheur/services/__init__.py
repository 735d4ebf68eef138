"""Use cases, one function per user action: load → circuit engine → signing → audit. They never commit:
the view, API handler, job or command that owns the action commits once."""
