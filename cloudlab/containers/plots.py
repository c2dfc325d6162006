"""Plots of builds and images: where the build time went (cached steps marked), how big each image is.

Each returns a closed figure, so a notebook shows it exactly once."""

from __future__ import annotations

from .build import Build


def plot_builds(builds: dict[str, Build], title: str = "Build time per step (hatched: CACHED)"):
    """One horizontal bar per build, split into its steps; cached steps are hatched (they take ~0 s)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.7 + 0.6 * len(builds)))
    labels = list(builds)
    for row, name in enumerate(labels):
        left = 0.0
        for s in builds[name].steps:
            width = max(s.seconds or 0.0, 0.02)
            ax.barh(row, width, left=left, hatch="//" if s.cached else None, edgecolor="black", linewidth=0.5)
            if width > 0.08 * max(b.seconds for b in builds.values()):
                ax.text(left + width / 2, row, s.keyword, ha="center", va="center", fontsize=8)
            left += width
        ax.text(left, row, f"  {builds[name].seconds:.1f} s", va="center", fontsize=9)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (each segment is one Dockerfile step)")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_sizes(sizes: dict[str, float], base_mb: float | None = None, title: str = "Image size (MB)"):
    """Bars of image sizes; the base image's share drawn darker when ``base_mb`` is given."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.7 + 0.5 * len(sizes)))
    names = list(sizes)
    for row, name in enumerate(names):
        ax.barh(row, sizes[name], color="#9ecae1", edgecolor="black", linewidth=0.5)
        if base_mb:
            ax.barh(row, min(base_mb, sizes[name]), color="#3182bd", edgecolor="black", linewidth=0.5)
        ax.text(sizes[name], row, f"  {sizes[name]:.0f} MB", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("MB" + (" (dark: the base image)" if base_mb else ""))
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
