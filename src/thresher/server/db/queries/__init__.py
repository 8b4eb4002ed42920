"""Every SQL statement the server runs, named, one module per domain (see `common.py` for the rules).

- `dispatch`: the asking nodes, the candidate tasks, the claim
- `jobs`: a job's state derived from its tasks, dependencies released
- `reports`: attempts ending, logs, lost attempts
- `steering`: people killing, pausing, retrying, skipping, re-prioritising
- `nodes`: heartbeats, registration, liveness
"""
