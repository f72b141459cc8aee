"""Python's empty native call (harness/probes.py): empty_ext.call(x) in the loop a user writes.

ROUNDS runs of CALLS calls, one clock read around each run; prints one JSON line, the nanoseconds per call of
every run. The folder holding the built extension comes first on sys.path (argv[1]).
"""

import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import empty_ext  # from the folder just added

calls = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
f = empty_ext.call
xs = [object()] * calls
for x in xs:  # warm-up: one run, not reported
    f(x)
ns = []
for _ in range(rounds):
    t0 = time.perf_counter_ns()
    for x in xs:
        f(x)
    ns.append((time.perf_counter_ns() - t0) / calls)
print(json.dumps({"probe": "python-extension", "ns_per_call": ns}))
