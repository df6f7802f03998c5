# Shortcuts for the README's two commands (which need only bash and Python 3.11: scripts/dashboard, scripts/test).
.PHONY: dashboard test bench clean

dashboard:
	./scripts/dashboard

test:
	./scripts/test

bench:
	./scripts/setup-venv.sh requirements-dev.txt
	.venv/bin/python benchmarks/bench_core.py
	.venv/bin/python benchmarks/bench_sessions.py
	.venv/bin/python benchmarks/bench_live.py

clean:
	rm -rf .venv .pytest_cache .ruff_cache
