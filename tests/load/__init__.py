"""Load tests (`make load`): many users polling many long jobs over real HTTP, on loopback only,
bounded in time. Each prints its figures as a table (docs/reliability.md keeps the last run's).
"""

#: Rows of the load table, printed at the end of the session.
RESULTS: list[dict[str, str]] = []
RESULT_COLUMNS = ("measure", "value", "target", "met")
