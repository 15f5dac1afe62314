"""The WSGI module loads the views up front and takes them out of the garbage collector's walks."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, sys
import flixly_site.wsgi
print(gc.get_freeze_count() > 10000, "generation.api.views" in sys.modules)
"""


def test_wsgi_import_freezes_the_loaded_app():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
