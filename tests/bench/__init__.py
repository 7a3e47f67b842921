"""The benchmark: ``make bench`` (``python -m tests.bench``). docs/performance.md explains it.

It seeds a school in its own PostgreSQL database, serves Lectern with gunicorn as documented,
logs in real users through the login form and drives each scenario with wrk beside Lectern's own
``/healthz`` and the yardstick's. These modules are not tests: none is named ``test_*``, so
pytest collects nothing here.
"""
