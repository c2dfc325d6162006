"""Containers toolkit: build, inspect, run and scan images with the real Docker engine and CLI.

Every helper prints the real command it runs (``docker build ...``, ``docker run ...``), so a learner
can repeat it in a terminal. Serves lesson 05 (containers) and the lessons that reuse its image:
06 (``kind load``), 07 (secrets in layers), 08 (the pipeline's build job).

The parts:

============  ================================================================================
``engine``    :func:`connect` (the learner's engine, else the lab's own dockerd), the BuildKit-capable
              CLI, the base image (pinned digest, or the lab's local base where no registry answers),
              :func:`docker` (the one way to run a command), skipping ``# needs: docker`` cells
``build``     :func:`build` (BuildKit, ``--network none``), :func:`parse_plain` (steps, CACHED, seconds),
              failures explained in plain words
``images``    size, history, the final filesystem (:func:`files`), ``docker save`` layers (:func:`save`),
              removal by label
``run``       :func:`run` a service container (least privilege: :data:`HARDENED`), ``/proc/1/status``,
              health, one-off commands
``context``   ``.dockerignore`` semantics, context size and digest (immutable tags), the wheelhouse
``plots``     build steps and image sizes
============  ================================================================================
"""

from .build import Build, BuildFailed, Step, build, explain, parse_plain  # noqa: F401
from .context import (  # noqa: F401
    WheelhouseError,
    content_tag,
    context_digest,
    context_files,
    context_size,
    is_ignored,
    parse_dockerignore,
    wheelhouse,
)
from .engine import (  # noqa: F401
    BASE_ARG,
    LABEL,
    MARKER,
    Engine,
    EngineDown,
    EngineMissing,
    answers,
    connect,
    current,
    docker,
    lab_engine_memory_mb,
    shown,
    skip_cells_without_engine,
    transform_cell,
)
from .images import (  # noqa: F401
    FileEntry,
    HistoryRow,
    Layer,
    SavedImage,
    files,
    find_files,
    history,
    history_text,
    inspect,
    remove_labelled,
    save,
    size_mb,
)
from .plots import plot_builds, plot_sizes  # noqa: F401
from .run import (  # noqa: F401
    HARDENED,
    Container,
    ContainerFailed,
    ProcStatus,
    capabilities,
    parse_proc_status,
    run,
    run_once,
)
