"""Course authoring and CI: never imported by a notebook.

=================  ===============================================================
``generate``       solutions/ -> exercises/ (``make exercises``; CI fails when stale)
``nbcheck``        the pytest plugin that makes nbval prove blank exercises fail their checks
``testrun``        ``make test``: the shards, their labs, the summary
``static_checks``  docker-compose.yml, the Dockerfile and the GitHub workflow, checked offline
``fresh``          pytest plugin: in ``make test``'s first pass, each lesson starts on a freshly reset lab
``outline``        what a notebook says about itself: objectives, sections, moments, tasks, figures
``wronganswers``   the wrong answers of every check, read from the wrong-answer tests
``timing``         minutes per lesson and section: estimate, derived (a stated rule + measured), recorded
``agenda``         agendas that fit the clock (docs/instructors/agendas.md)
``instructor``     ``make instructor-notes``: a page per lesson, the index; ``instructor_nb`` the notebooks
``packpages``      the generated blocks of the hand-written instructor pages
``measure``        ``make measure``: a lesson alone on a brand-new lab (time, memory, disk)
=================  ===============================================================

The notebook cell tags the generator writes and the plugin reads are defined once, here.
"""

TODO_TAG = "todo"  # a task cell (its solution replaced by raise NotImplementedError())
CHECK_TAG = "check"  # a check cell: on a blank exercise it must raise CheckFailed
RAISES_TAG = "raises-exception"  # nbval's tag: this cell may raise
BANNER_TAG = "exercise-banner"  # the generated banner at the top of an exercise notebook
