"""Load tests (`make load`): many users polling many long jobs over real HTTP, on loopback only,
bounded in time. Each prints its figures as a table (docs/reliability.md keeps the last run's).
"""

from tests.support import ResultsTable

#: The load table, printed at the end of the session.
RESULTS = ResultsTable("load results", "load-results.md", ("measure", "value", "target", "met"))
