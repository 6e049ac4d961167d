## e2e: the end-to-end tests of the appliance (each make/*.mk adds its own
## as a prerequisite of e2e); each is bounded in time
.PHONY: e2e
e2e:
	@echo "e2e: passed"
