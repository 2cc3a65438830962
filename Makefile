# The two commands of the README: `make run` (whole system) and `make test` (all tests).
SHELL := /bin/bash

.PHONY: run test setup unit bench loadtest
setup:
	tools/setup.sh all

run:
	tools/run.sh

test:
	tools/setup.sh all
	tools/test.sh

unit:
	tools/setup.sh venv
	tools/test.sh -m "not slow and not integration"
