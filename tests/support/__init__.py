"""Helpers shared by the process-level suites (tests/e2e, tests/kube, tests/faults).

Each suite keeps its own support module for what is specific to it; what the suites did the same
way (free ports, the echo-backend thread, the controller subprocess plumbing, certificates,
HTTP(S) clients, polling, scratch directories, the nginx skip) lives here, once. Import the
submodules explicitly, e.g. `from tests.support import ports`.
"""
