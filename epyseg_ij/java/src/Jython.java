import epyseg.bridge.BridgeException;
import epyseg.bridge.PyBridge;
import epyseg.bridge.ScriptRun;
import ij.IJ;
import ij.plugin.PlugInInterpreter;
import org.python.core.Py;
import org.python.core.PyException;
import org.python.core.PyObject;
import org.python.util.PythonInterpreter;

/**
 * Runs Jython scripts for ImageJ 1.x: {@code .py} files from Plugins or {@code IJ.runMacroFile}, and
 * {@code eval("python", code)} in macros. ImageJ looks this class up by its name ("Jython"); without it ImageJ 1.x
 * offers to download the old Jython.jar plug-in. The script gets {@code getArgument()} and returns the string value
 * of its {@code result} variable, if any.
 */
public class Jython extends PlugInInterpreter {
    private String returnValue = "";

    @Override
    public String run(String script, String arg) {
        returnValue = "";
        PythonInterpreter pi = ScriptRun.interpreter(arg);
        try {
            pi.exec(script);
            PyObject result = pi.get("result");
            if (result != null && result != Py.None) {
                returnValue = result.toString();
            }
        } catch (PyException e) {
            returnValue = "[aborted]";
            Object cause = e.value == null ? null : e.value.__tojava__(Throwable.class);
            if (cause instanceof BridgeException) {
                PyBridge.report((BridgeException) cause); // the one-line EPySeg message, as for macros
            } else {
                IJ.log(e.toString());
            }
        } finally {
            pi.cleanup();
        }
        return returnValue;
    }

    @Override
    public String getReturnValue() {
        return returnValue;
    }

    @Override
    public String getName() {
        return "Jython";
    }

    @Override
    public String getImports() {
        return "";
    }

    @Override
    public String getVersion() {
        return org.python.Version.PY_VERSION;
    }
}
