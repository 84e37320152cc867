"""
Turn trial's closing line into the plain "N passed, N failed" line CI reads.

trial ends with "PASSED (successes=N[, skips=K])" or
"FAILED (failures=A, errors=B, successes=N, ...)".  Errors, failures and
unexpected successes all count as failed; a run that did not produce a
summary at all (a crash, an import error) counts as one failure.
"""

import re
import sys


def summarise(text, returncode):
    match = None
    for match in re.finditer(r"^(PASSED|FAILED) \(([^)]*)\)\s*$", text, re.M):
        pass
    if match is None:
        return 0, 1, 0
    counts = dict(
        (key.strip(), int(value))
        for key, value in (part.split("=") for part in match.group(2).split(","))
    )
    failed = sum(counts.get(k, 0) for k in ("failures", "errors", "unexpectedSuccesses"))
    if match.group(1) == "FAILED" and failed == 0:
        failed = 1
    if returncode != 0 and failed == 0:
        failed = 1
    return counts.get("successes", 0), failed, counts.get("skips", 0)


def main():
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        text = f.read()
    passed, failed, skipped = summarise(text, int(sys.argv[2]))
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
