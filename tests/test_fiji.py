"""Today's Fiji (2.17+) and the embedded ImageJ on systems without Debian's jars.

There is no real Fiji here: the tests build a Fiji.app laid out like the real one (jars/ij-1.x.jar, plugins/,
config/jaunch/fiji.cfg and fiji.py) around Debian's real ImageJ 1.53t, and a JVM started the way Fiji's Python mode
starts it (fiji_attach_session.py, in its own process: one JVM per process). The ij.jar download is served by a
real HTTP server on localhost.
"""

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tifffile

from epyseg_ij import cli, io
from epyseg_ij.errors import EpysegError
from epyseg_ij.ij import install, jars
from epyseg_ij.ij.plugin import JAR_NAME, plugin_jar
from epyseg_ij.synth import STYLES, synth_epithelium

HERE = Path(__file__).resolve().parent
USER_CFG = "# my Fiji\nmax-heap=12g\nlaunch-mode=JVM\n"


@pytest.fixture
def fiji_app(tmp_path):
    """A Fiji.app as Fiji 2.17 lays it out, in a folder with spaces and non-ASCII characters."""
    app = tmp_path / "Mes logiciels é 日本" / "Fiji.app"
    for folder in ("jars/linux64", "plugins", "macros", "scripts", "config/jaunch", "python"):
        (app / folder).mkdir(parents=True)
    shutil.copy(jars.DEBIAN_IJ, app / "jars" / "ij-1.53t.jar")
    (app / "config" / "jaunch" / "fiji.cfg").write_text(USER_CFG)
    (app / "config" / "jaunch" / "fiji.toml").write_text("jaunch-version = 2\nprogram-name = 'Fiji'\n")
    (app / "config" / "jaunch" / "fiji.py").write_text("# Fiji's Python-mode start-up (fiji_attach_session.py)\n")
    (app / "config" / "environment.yml").write_text("name: fiji\ndependencies:\n  - pyimagej>=1.7.0\n")
    return app


@pytest.fixture
def python_env(tmp_path):
    """A Python environment laid out as conda makes it, with what Fiji's Python mode needs (a path with a space)."""
    env = tmp_path / "envs" / "epyseg ij"
    site = env / "lib" / "python3.11" / "site-packages"
    for name in ("pyimagej", "scyjava", "epyseg_ij"):
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (env / "lib" / "libpython3.so").write_bytes(b"")
    return env


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_install_fiji_sets_python_mode_keeps_the_rest_then_uninstall_restores(fiji_app, python_env, capsys):
    cfg = fiji_app / "config" / "jaunch" / "fiji.cfg"
    before = snapshot(fiji_app)
    assert cli.main(["install-fiji", str(fiji_app), "--python", str(python_env)]) == 0
    lines = cfg.read_text().splitlines()
    assert lines == ["# my Fiji", "max-heap=12g", "launch-mode=PYTHON", f"python-dir={python_env}"]
    assert (fiji_app / "plugins" / JAR_NAME).read_bytes() == plugin_jar().read_bytes()
    [backup] = (fiji_app / "config" / "epyseg-ij").glob("fiji.*.cfg")
    assert backup.read_text() == USER_CFG
    out = capsys.readouterr().out
    assert "3 files changed, 1 backed up" in out

    installed = snapshot(fiji_app)
    assert cli.main(["install-fiji", str(fiji_app), "--python", str(python_env)]) == 0
    assert snapshot(fiji_app) == installed  # twice changes nothing more
    assert "0 files changed, 0 backed up" in capsys.readouterr().out

    assert cli.main(["install-fiji", str(fiji_app), "--uninstall"]) == 0
    after = snapshot(fiji_app)
    kept = {p for p in after if p.parts[:2] == ("config", "epyseg-ij")}
    assert {p: after[p] for p in after if p not in kept} == before  # the user's files as they were
    backups = sorted(p.suffix for p in kept if not p.name.startswith("."))  # (not the lock file)
    assert backups == [".cfg", ".cfg", ".jar"]  # every file it replaced or removed, kept


def test_install_fiji_refuses_what_it_cannot_use_in_one_line(fiji_app, python_env, tmp_path, capsys):
    def fails(*args: str) -> str:
        assert cli.main(["install-fiji", *args]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        return line

    assert "is not a Fiji.app folder" in fails(str(tmp_path), "--python", str(python_env))
    bare = tmp_path / "bare env"
    bare.mkdir()
    assert "lacks epyseg-ij, pyimagej, scyjava" in fails(str(fiji_app), "--python", str(bare))
    assert "pip install 'epyseg-ij[fiji]'" in fails(str(fiji_app), "--python", str(bare))
    cfg = fiji_app / "config" / "jaunch" / "fiji.cfg"
    cfg.unlink()
    cfg.mkdir()
    assert "is a folder, not a regular file" in fails(str(fiji_app), "--python", str(python_env))
    shutil.rmtree(fiji_app / "config" / "jaunch")
    assert "older than 2.17" in fails(str(fiji_app), "--python", str(python_env))
    assert not (fiji_app / "plugins" / JAR_NAME).exists()


def test_attach_to_a_jvm_started_like_fijis_python_mode(fiji_app, python_env, private_home):
    """The JVM comes first (as in Fiji's Python mode); attach() registers the service once; a macro segments."""
    install.install(fiji_app, python_env)
    sample = synth_epithelium((96, 128), seed=4, style=STYLES["clean"])
    image = io.write_tiff(fiji_app.parent / "cellules ï.tif", sample.image)
    env = {**os.environ, "EPYSEG_IJ_HOME": str(private_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, str(HERE / "fiji_attach_session.py"), str(fiji_app), str(image)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    import epyseg_ij

    n = int(epyseg_ij.segment(tifffile.imread(image), "classical").labels.max())
    assert seen["before"] == "" and "install-fiji" in seen["before_error"]
    assert seen["same"] and seen["installed_once"]
    assert seen["imagej"] == {"launcher": "attached", "plugins": str(fiji_app / "plugins"), "app": str(fiji_app)}
    assert seen["macro"] == f"{n} cellules ï.tif 2"  # the image stays current; the labels image is the second
    assert seen["via_ij_property"] == "pong"


# ---------------------------------------------------------------------------------- the embedded ImageJ


@pytest.fixture
def jar_server(tmp_path):
    """A real HTTP server on localhost that serves Debian's ij.jar as a published release."""
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(jars.DEBIAN_IJ, root / "ij-1.53t.jar")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/ij-1.53t.jar"
    httpd.shutdown()


@pytest.fixture
def no_debian_jars(tmp_path, monkeypatch):
    """A system without Debian's libij-java and a fresh epyseg-ij cache."""
    monkeypatch.setattr(jars, "DEBIAN_IJ", tmp_path / "absent" / "ij.jar")
    monkeypatch.delenv(jars.IJ_JAR_VARIABLE, raising=False)
    monkeypatch.setenv("EPYSEG_IJ_HOME", str(tmp_path / "cache é"))
    return tmp_path / "cache é"


def test_embedded_imagej_downloads_the_pinned_jar_once_and_checks_it(jar_server, no_debian_jars, monkeypatch):
    httpd, url = jar_server
    digest = hashlib.sha256(Path("/usr/share/java/ij.jar").read_bytes()).hexdigest()
    monkeypatch.setattr(jars, "IJ_RELEASE", jars.Release("1.53t", url, digest))
    path = jars.imagej_jar()
    assert path == no_debian_jars / "imagej" / "jars" / "ij-1.53t.jar"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    httpd.shutdown()  # offline from now on: the cached jar serves
    assert jars.imagej_jar() == path
    monkeypatch.setenv(jars.IJ_JAR_VARIABLE, str(jars.DEBIAN_IJ.parent / "nothing.jar"))
    with pytest.raises(EpysegError, match="EPYSEG_IJ_JAR=.* is not a file"):
        jars.imagej_jar()


def test_embedded_imagej_download_errors_say_where_to_put_the_jar(jar_server, no_debian_jars, monkeypatch):
    _, url = jar_server
    target = no_debian_jars / "imagej" / "jars" / "ij-1.53t.jar"
    for release, reason in (
        (jars.Release("1.53t", url, "0" * 64), "SHA256 hash of downloaded file"),  # a corrupted download
        (jars.Release("1.53t", "http://127.0.0.1:9/ij-1.53t.jar", "0" * 64), "port=9"),  # offline
    ):
        monkeypatch.setattr(jars, "IJ_RELEASE", release)
        with pytest.raises(EpysegError) as error:
            jars.imagej_jar()
        message = str(error.value)
        assert reason in message and f"put it at {target} (sha256 {'0' * 64})" in message and "\n" not in message
        assert not target.exists()  # nothing half-downloaded or unchecked is kept


def test_a_named_jdk_is_used_for_the_jvm_and_the_plugin_build(tmp_path):
    import jpype

    default = Path(jpype.getDefaultJVMPath())
    home = default.parents[2]  # <jdk>/lib/server/libjvm.so
    assert jars.jvm_library(jars.java_home(home)) == str(default)
    assert Path(jars.jdk_tool("javac", home)).parent == home / "bin"
    with pytest.raises(EpysegError, match="holds no JVM library"):
        jars.jvm_library(tmp_path)
    with pytest.raises(EpysegError, match="is not a folder"):
        jars.java_home(tmp_path / "no jdk")
