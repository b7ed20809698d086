"""The colour of each genre label: the one source for the terminal display, the pages and other apps.

``hello.label_colors`` carries them to every feed client (lights, overlays), so a genre has one colour
everywhere. Common genre names (GTZAN's, FMA's, the shipped model's) keep theirs across models; other labels
take the fallback palette by their place in the model's label list.
"""

from __future__ import annotations

GENRE_COLOURS = {
    "blues": "#4e8ff7",
    "classical": "#c9a7ff",
    "country": "#e8a23a",
    "disco": "#ff5fb0",
    "electronic": "#36d6e7",
    "experimental": "#b6e36b",
    "folk": "#d9a066",
    "hiphop": "#ffd23f",
    "hip-hop": "#ffd23f",
    "instrumental": "#8bd3ff",
    "international": "#f78fb3",
    "jazz": "#3fc7c2",
    "metal": "#b0bccb",
    "pop": "#ff7a59",
    "reggae": "#5ed36b",
    "rock": "#ef4b4b",
}
FALLBACK_COLOURS = ("#4e8ff7", "#ef4b4b", "#5ed36b", "#ffd23f", "#c9a7ff", "#3fc7c2", "#ff7a59", "#ff5fb0", "#9aa4b2",
                    "#e8a23a", "#8bd3ff", "#b6e36b")


def label_colours(labels: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``#rrggbb`` for each label, by name where the name is a known genre, else by its index."""
    return {label: GENRE_COLOURS.get(label.lower(), FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)])
            for i, label in enumerate(labels)}
