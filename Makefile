# The course's commands. Run `make help` for the list.
# Everything is delegated to `python3 -m cloudlab.lab` (standard library only),
# so these targets work before any virtual environment exists.
PYTHON ?= python3
LAB    := $(PYTHON) -m cloudlab.lab
VPY    := .venv/bin/python
# nbval: compare outputs only where a cell asks for it; kill a cell that hangs.
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=300
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup lab stop stop-all status logs update reset exercises lint test test-unit test-notebooks bench \
        cluster cluster-down

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup:  ## create the course's environments (ALL=1: also every lesson's tools, system packages as root)
	@$(LAB) setup $(if $(ALL),--all)

lab: setup  ## start the local cloud and JupyterLab on 127.0.0.1:8888, print the URL
	@$(LAB) lab

stop:  ## stop the local cloud (emulators, lesson processes); JupyterLab keeps running
	@$(LAB) down

stop-all:  ## also stop JupyterLab (refuses while notebooks are open; FORCE=1 stops anyway)
	@$(LAB) down --all $(if $(FORCE),--force)

# The reason is the last line `status` prints. A failing recipe would make make add its own
# "make: *** [Makefile:NN: status] Error 1" after it; SIGQUIT makes GNU make exit non-zero without a word
# instead. The recipe stays alive a moment, so make's handler (not its main loop) reaps it. Where make ignores
# SIGQUIT (started as a script's background job; bit 4 of SigIgn in /proc), the recipe fails the usual way.
status:  ## what runs (the lab's and the lessons' processes), your progress; exit 1 when the cloud is down
	@$(LAB) status || { ign=$$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$PPID/status 2>/dev/null); \
	  if [ -n "$$ign" ] && [ $$(( 0x$$ign & 4 )) -ne 0 ]; then exit 1; fi; kill -QUIT $$PPID; sleep 1; }

logs:  ## what runs, what stopped and why, then each log's last lines without routine noise
	@$(LAB) logs

update:  ## take course updates (git pull) and refresh workspace/ without losing your edits
	@$(LAB) update

reset:  ## wipe emulator data and Terraform state (PROGRESS=1 also wipes your progress)
	@$(LAB) reset $(if $(PROGRESS),--progress)

lint:  ## ruff: the style rules (pyproject.toml), also run by make test
	@$(VPY) -m ruff check . && $(VPY) -m ruff format --check .

exercises:  ## regenerate exercises/ from solutions/ (and clear notebook outputs)
	@$(PYTHON) -m cloudlab.authoring.generate --strip

test:  ## everything CI runs: lint, unit tests, every notebook twice, blank exercises must fail
	@$(LAB) setup --all
	@$(VPY) -m cloudlab.authoring.testrun $(PYTEST_ARGS)

test-unit: setup  ## only the fast unit tests (no emulator)
	@$(VPY) -m pytest tests -m "not lab" $(PYTEST_ARGS)

test-notebooks:  ## one pass over the notebooks of one lesson: make test-notebooks L=01
	@$(LAB) setup --all
	@$(LAB) --profile test run -- $(VPY) -m pytest -p cloudlab.authoring.nbcheck $(NBVAL) \
	    $(wildcard notebooks/$(L)*.ipynb solutions/$(L)*.ipynb exercises/$(L)*.ipynb) $(PYTEST_ARGS)

bench: setup  ## measure lab start times, memory (BENCH_ARGS="--cold 3 --pip --test" for all)
	@$(PYTHON) benchmarks/bench.py $(BENCH_ARGS)

cluster:  ## create the course's kind cluster (needs kind + Docker), load the order service's image
	@$(LAB) cluster

cluster-down:  ## delete the course's kind cluster
	@$(LAB) cluster-down

# ---- The workshop room (docs/instructors/room.md): JupyterHub on this server, a lab per learner. Root only.
.PHONY: hub hub-accounts hub-status hub-restart hub-stop
hub:  ## start the workshop hub (JupyterHub) on 127.0.0.1:8000 (root; IP=... only as room.md says)
	@$(LAB) setup --all
	@$(if $(IP),CLOUDLAB_HUB_IP=$(IP)) $(PYTHON) -m cloudlab.hub up

hub-accounts:  ## workshop accounts and login cards: SEATS=25 or NAMES=file.txt; INSTRUCTOR=1 the instructor's too
	@$(PYTHON) -m cloudlab.hub accounts create $(if $(SEATS),--seats $(SEATS)) $(if $(NAMES),--names $(NAMES)) \
	    $(if $(INSTRUCTOR),--instructor) $(if $(URL),--url $(URL))

hub-status:  ## the hub, every learner's server, anything listening beyond 127.0.0.1
	@$(PYTHON) -m cloudlab.hub status

hub-restart:  ## restart only the hub process: the learners' servers keep running
	@$(PYTHON) -m cloudlab.hub restart

hub-stop:  ## stop every learner's server (their work stays in their homes), the hub and its proxy
	@$(PYTHON) -m cloudlab.hub down

# ---- The instructor's and team lead's pack (docs/instructors/README.md). Generated pages are checked by the tests.
.PHONY: instructor-notes instructor-notebooks record-timing measure room-check catchup progress-export progress-report
instructor-notes:  ## regenerate docs/instructors/ (lesson notes, agendas) from the course's data (CHECK=1: only check)
	@$(PYTHON) -m cloudlab.authoring.instructor $(if $(CHECK),--check)

instructor-notebooks:  ## an instructor's copy of each notebook, notes as cells tagged `instructor`, in workspace/instructor/
	@$(PYTHON) -m cloudlab.authoring.instructor --notebooks $(OUT)

record-timing:  ## after a workshop: make record-timing L=04 TEACHING=62 EXERCISES=55 [SECTION="Alert fatigue=12"] [NOTE=...]
	@$(PYTHON) -m cloudlab.authoring.timing $(L) $(if $(TEACHING),--teaching $(TEACHING)) \
	    $(if $(EXERCISES),--exercises $(EXERCISES)) $(if $(SECTION),--section "$(SECTION)") $(if $(NOTE),--note "$(NOTE)")

measure:  ## run a lesson alone on a brand-new lab: machine time per section, peak memory, disk (L=05; all without L)
	@$(LAB) setup --all
	@$(VPY) -m cloudlab.authoring.measure $(L)

room-check:  ## on the room's machine image: per lesson, ready or not, with the fix (under a minute)
	@$(PYTHON) -m cloudlab.roomcheck

catchup:  ## give a lesson what earlier lessons would have built (images ...), so it can be the first: make catchup L=08
	@$(VPY) -m cloudlab.catchup $(L)

progress-export:  ## write your progress to a file a team lead can collect (progress-<name>-<date>.json)
	@$(PYTHON) -m cloudlab.team export $(if $(NAME),--name "$(NAME)") $(if $(OUT),--out $(OUT))

progress-report:  ## a team lead: one table from collected progress files: make progress-report FILES="a.json b.json"
	@$(PYTHON) -m cloudlab.team report $(FILES) $(if $(CSV),--csv)
