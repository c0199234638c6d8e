"""Prints the fault suite's summary table at the end of the run."""

RESULTS: list[dict] = []


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    cols = ["fault", "count", "acknowledged", "in local db", "in newest Hub backup", "lost"]
    rows = [[str(r[c]) for c in cols] for r in RESULTS]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    terminalreporter.section("fault suite: no acknowledged review lost")
    terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in rows:
        terminalreporter.write_line("  ".join(v.ljust(w) for v, w in zip(row, widths)))
