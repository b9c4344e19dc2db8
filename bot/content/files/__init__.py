"""Content files, parsed and validated: shows, reviews and critic rankings.

Pure: nothing here touches storage or the network, and the only I/O is listing the content
directory and reading its files. Every problem becomes a :class:`ContentProblem` naming the
file and, where it can be found, the line, so an editor can fix a file without reading
Python. A file with any error yields no model at all: callers never see a half-valid show.

- ``layout``: where content lives, naming rules, listing and reading files;
- ``toml_text``: decoding, TOML with errors on their lines, the line of a key;
- ``fields``: checks of single values the kinds share;
- ``shows``, ``reviews``, ``rankings``: one kind of file each;
- ``cross_file``: the rules between files (applied by ``bot.content.sync``).
"""

from bot.content.files.cross_file import review_episode_problem, unknown_show_problem
from bot.content.files.fields import release_instant
from bot.content.files.layout import (
    MAX_FILE_BYTES,
    RANKINGS_DIR,
    REVIEWS_DIR,
    SHOWS_DIR,
    ContentFile,
    FileKind,
    Scan,
    classify,
    is_blocked,
    read_file,
    scan_content_dir,
    sha256_hex,
)
from bot.content.files.problems import ContentProblem, Severity, count_summary
from bot.content.files.rankings import normalise_code, parse_ranking_bytes
from bot.content.files.reviews import (
    ENDING_MAX_CHARS,
    REVIEW_MAX_CHARS,
    VERDICT_MAX_CHARS,
    parse_review_bytes,
)
from bot.content.files.shows import parse_show_bytes

__all__ = [
    "ENDING_MAX_CHARS",
    "MAX_FILE_BYTES",
    "RANKINGS_DIR",
    "REVIEWS_DIR",
    "REVIEW_MAX_CHARS",
    "SHOWS_DIR",
    "VERDICT_MAX_CHARS",
    "ContentFile",
    "ContentProblem",
    "FileKind",
    "Scan",
    "Severity",
    "classify",
    "count_summary",
    "is_blocked",
    "normalise_code",
    "parse_ranking_bytes",
    "parse_review_bytes",
    "parse_show_bytes",
    "read_file",
    "release_instant",
    "review_episode_problem",
    "scan_content_dir",
    "sha256_hex",
    "unknown_show_problem",
]
