"""Keep ultralytics offline: nothing may try to download fonts, weights or packages (there is no internet here,
and a serious tool must not reach out silently).

- ``YOLO_OFFLINE=1`` before ultralytics is imported: its ``ONLINE`` flag is computed at import, and with it off it
  skips the hub, analytics events, update checks and URL probes.
- ``YOLO_AUTOINSTALL=0``: ``check_requirements`` never runs ``pip install`` (DDP's ``cloudpickle``, COCO tools).
- Fonts: ultralytics' plots look for ``Arial.ttf`` / ``Arial.Unicode.ttf`` in its config directory and otherwise
  download them; matplotlib's DejaVu Sans (always installed with matplotlib) is copied there under those names.
- AMP check: on CUDA, ``check_amp`` loads ``yolo26n.pt`` (a download) to compare fp16 and fp32 outputs; the runner
  passes ``amp`` itself and the trainer's check catches the offline failure (it then keeps AMP on, with a warning).

A variable the user has set is left as it is (``YOLO_OFFLINE=0`` opts back in).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FONTS = ("Arial.ttf", "Arial.Unicode.ttf")


def ultralytics_offline() -> Path | None:
    """Set the offline environment (before the first ultralytics import where possible) and provide the fonts;
    returns ultralytics' config directory, or None where the fonts could not be written there."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    from ultralytics.utils import USER_CONFIG_DIR

    return install_fonts(Path(USER_CONFIG_DIR))


def install_fonts(directory: Path) -> Path | None:
    """Copy matplotlib's DejaVu Sans to ``directory`` as the fonts ultralytics would download; None if not writable."""
    missing = [name for name in FONTS if not (directory / name).is_file()]
    if not missing:
        return directory
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in missing:
            temporary = directory / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(source, temporary)
            os.replace(temporary, directory / name)
    except OSError:
        return None
    return directory
