"""Wrong first attempts at every task, one module per lesson (``lessonNN.py``): ``make test`` runs each task
blank, then with its wrong attempt, then right, in one kernel (see ``cloudlab/authoring/retry.py``)."""
