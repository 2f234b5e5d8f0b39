"""Compile every locale/*/LC_MESSAGES/*.po and locale_viewflow/*/LC_MESSAGES/*.po into .mo with polib.

No GNU gettext is needed on the machine. locale_viewflow/ holds the translations of viewflow's own UI strings.
"""

from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
CATALOG_GLOBS = ("locale/*/LC_MESSAGES/*.po", "locale_viewflow/*/LC_MESSAGES/*.po")


def main() -> None:
    for po_path in sorted(path for pattern in CATALOG_GLOBS for path in ROOT.glob(pattern)):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        print(f"compiled {mo_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
