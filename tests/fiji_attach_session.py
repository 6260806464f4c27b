"""Run by test_fiji.py in its own process: start a JVM the way Fiji's Python mode does, then attach EPySeg to it.

Fiji's ``config/jaunch/fiji.py`` gets the class path and JVM options from the Jaunch launcher and starts the JVM
inside CPython with JPype (through scyjava). This script does the same with a laid-out Fiji.app (its jars/ and
plugins/ on the class path, Jaunch's -D options), runs a macro before and after ``epyseg_ij.ij.attach()``, and
prints one JSON object. Arguments: FIJI_APP IMAGE.
"""

import json
import sys
from pathlib import Path


def main(app: Path, image: Path) -> dict:
    import jpype
    import jpype.imports  # noqa: F401

    patterns = ("jars/*.jar", "jars/*/*.jar", "plugins/*.jar", "plugins/*/*.jar")  # Jaunch's jvm.classpath
    jars = [j for pattern in patterns for j in app.glob(pattern)]
    options = [
        "-Djava.awt.headless=true",
        "-Dpython.cachedir.skip=true",
        f"-Dplugins.dir={app}",
        f"-Dimagej.dir={app}",
        f"-Dij.dir={app}",
        f"-Dfiji.dir={app}",
        f"-Dscijava.app.config-file={app / 'config' / 'jaunch' / 'fiji.cfg'}",
    ]
    jpype.startJVM(*options, classpath=[str(j) for j in sorted(jars)], convertStrings=False)
    from ij import IJ, Menus
    from java.lang import System

    seen = {"before": str(IJ.runMacro('return call("epyseg.bridge.PyBridge.call", "about");'))}
    seen["before_error"] = str(System.getProperties().get("epyseg.lastError"))

    from epyseg_ij import ij

    first = ij.attach()
    commands = Menus.getCommands().size()
    dispatcher = System.getProperties().get("epyseg.pybridge")
    seen["same"] = ij.attach() is first and ij.start() is first and ij.start(headless=True) is first
    seen["installed_once"] = Menus.getCommands().size() == commands and System.getProperties().get(
        "epyseg.pybridge"
    ).equals(dispatcher)
    seen["imagej"] = {"launcher": first.launcher, "plugins": str(first.plugins_dir), "app": str(first.app_dir)}
    path = str(image).replace("\\", "/")
    seen["macro"] = str(
        IJ.runMacro(f"""
            setBatchMode(true);
            open("{path}");
            run("EPySeg Segment", "model=classical output=[labels results]");
            return "" + nResults + " " + getTitle() + " " + nImages;
        """)
    )
    System.getProperties().remove("epyseg.pybridge")  # left only as an ImageJ property: the shim still finds it
    seen["via_ij_property"] = str(IJ.runMacro('return call("epyseg.bridge.PyBridge.call", "ping");'))
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
