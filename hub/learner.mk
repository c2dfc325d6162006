# Read by `make` in a learner's terminal on the workshop hub (the MAKEFILES variable, set by cloudlab.hub.launch),
# so `make lab`, `make status`, `make stop` and `make logs` work from their workspace as in the course's folder
# (there, the course's own Makefile is used instead and this file adds nothing).
ifeq ($(wildcard Makefile makefile GNUmakefile),)
CLOUDLAB_COURSE := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
.PHONY: lab status stop logs
lab status stop logs:
	@$(MAKE) --no-print-directory -C $(CLOUDLAB_COURSE) $@
endif
