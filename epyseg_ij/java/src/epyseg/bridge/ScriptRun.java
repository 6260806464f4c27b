package epyseg.bridge;

import ij.IJ;
import java.io.File;
import org.python.core.Py;
import org.python.core.PyBaseException;
import org.python.core.PyException;
import org.python.core.PyObject;
import org.python.core.PyTraceback;
import org.python.util.PythonInterpreter;

/**
 * One Jython script run by epyseg-ij ({@code epyseg-ij macro script.py}) on the calling thread, and how it ended:
 * its {@code result}, or the error that stopped it (one line, with the script line), or {@code sys.exit()}.
 *
 * <p>Scripts see what ImageJ's Jython plug-in gives them: {@code getArgument()}, the ImageJ and EPySeg classes
 * ({@code from ij import IJ}, {@code from epyseg.bridge import PyBridge}). Nothing is printed here; the caller
 * reports.
 */
public final class ScriptRun {
    private static final String DEBIAN_HOME = "/usr/share/jython";

    private String value;
    private String error;
    private int line;
    private boolean exited;
    private boolean cancelled;

    private ScriptRun() {
    }

    /** A Jython interpreter set up as ImageJ's Jython plug-in sets it up, whose {@code getArgument()} is arg. */
    public static PythonInterpreter interpreter(String arg) {
        if (System.getProperty("python.home") == null && new File(DEBIAN_HOME).isDirectory()) {
            System.setProperty("python.home", DEBIAN_HOME);
        }
        if (System.getProperty("python.cachedir.skip") == null) {
            System.setProperty("python.cachedir.skip", "true");
        }
        PythonInterpreter pi = new PythonInterpreter();
        pi.getSystemState().setClassLoader(IJ.getClassLoader());
        pi.set("_ij_argument", arg == null ? "" : arg);
        pi.exec("def getArgument():\n    return _ij_argument\n");
        return pi;
    }

    /** Runs the script file with its argument on this thread; never throws. */
    public static ScriptRun run(String path, String arg) {
        ScriptRun run = new ScriptRun();
        PythonInterpreter pi = null;
        try {
            pi = interpreter(arg);
            pi.set("__name__", "__main__");
            pi.set("__file__", path);
            pi.execfile(path);
            PyObject result = pi.get("result");
            if (result != null && result != Py.None) {
                run.value = result.toString();
            }
        } catch (PyException e) {
            run.stopped(e, path);
        } catch (Throwable t) { // a Java error outside the script's own code (Jython's start-up, say)
            run.error = MacroRun.describe(t);
        } finally {
            if (pi != null) {
                pi.cleanup();
            }
        }
        return run;
    }

    private void stopped(PyException e, String path) {
        if (e.match(Py.SystemExit)) {
            PyObject code = e.value instanceof PyBaseException ? ((PyBaseException) e.value).__getattr__("code") : null;
            boolean ok = code == null || code == Py.None || "0".equals(code.toString());
            exited = ok;
            if (!ok) {
                error = "the script exited with " + code;
            }
            return;
        }
        line = scriptLine(e.traceback, path);
        Object cause = e.value == null ? null : e.value.__tojava__(Throwable.class);
        if (cause instanceof BridgeException) {
            error = ((BridgeException) cause).getMessage(); // an EPySeg error: its one line, as for macros
            cancelled = ((BridgeException) cause).isCancelled();
        } else if (cause instanceof Throwable && cause != Py.NoConversion) {
            error = MacroRun.describe((Throwable) cause);
        } else {
            String type = e.type instanceof org.python.core.PyType
                    ? ((org.python.core.PyType) e.type).getName() : String.valueOf(e.type);
            String text = e.value == null ? "" : e.value.__str__().toString().trim();
            error = text.isEmpty() ? type : type + ": " + text.replaceAll("\\s*\\n\\s*", " ");
        }
    }

    /** The script line where the error was raised: the innermost frame of the traceback that is in the script. */
    private static int scriptLine(PyTraceback traceback, String path) {
        int found = 0;
        for (PyTraceback tb = traceback; tb != null; tb = tb.tb_next instanceof PyTraceback
                ? (PyTraceback) tb.tb_next : null) {
            boolean inScript = tb.tb_frame != null && tb.tb_frame.f_code != null
                    && path.equals(tb.tb_frame.f_code.co_filename);
            if (inScript || found == 0) {
                found = tb.tb_lineno;
            }
        }
        return found;
    }

    /** The value of the script's {@code result} variable (null without one, or after an error). */
    public String getValue() {
        return error == null ? value : null;
    }

    /** The one-line message of the error that stopped the script, or null. */
    public String getError() {
        return error;
    }

    /** The script line of that error; 0 when unknown. */
    public int getLine() {
        return line;
    }

    /** True when the script ended with {@code sys.exit()} (status 0): a normal end. */
    public boolean isExit() {
        return exited;
    }

    /** True when an EPySeg job of the script was cancelled (Esc or the cancel command). */
    public boolean isCancelled() {
        return cancelled;
    }
}
