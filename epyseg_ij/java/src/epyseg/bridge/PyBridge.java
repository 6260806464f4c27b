package epyseg.bridge;

import ij.IJ;
import ij.ImagePlus;
import ij.macro.Interpreter;
import java.awt.GraphicsEnvironment;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The way from ImageJ (macros, plug-ins, Jython scripts) into the EPySeg Python service.
 *
 * <p>The Python process that hosts this JVM (it started it, or attached to it) stores one
 * {@code java.util.function.Function} under the system property key {@value #KEY}. Every request is a {@code Map}
 * with at least a {@code "command"} entry; every reply is a {@code Map} that holds either the results or an
 * {@code "error"} message and its {@code "kind"}.
 *
 * <p>Macros use the string API: {@code call("epyseg.bridge.PyBridge.call", "segment", "model=default tta=none")}.
 * Jython scripts use {@link #segment(ImagePlus, String)} and friends, which return the Java objects.
 */
public final class PyBridge {
    /** Where the Python dispatcher lives in {@code System.getProperties()}. */
    public static final String KEY = "epyseg.pybridge";
    /** Where the last error message is kept (a String in {@code System.getProperties()}), for scripts and tests. */
    public static final String LAST_ERROR = "epyseg.lastError";
    /** Set this system property to "log" to report errors in the Log window instead of dialogs. */
    public static final String ERRORS = "epyseg.errors";

    static final String NOT_RUNNING = "the EPySeg Python service is not running in this ImageJ: run"
            + " 'epyseg-ij install-fiji FIJI_DIR' and restart Fiji (Python mode), or start ImageJ from Python with"
            + " 'epyseg-ij fiji' (macros: 'epyseg-ij macro FILE.ijm')";

    private PyBridge() {
    }

    /**
     * The registered dispatcher: in the system properties (every class loader sees them) or, failing that, as an
     * ImageJ property; in a Fiji in Python mode that has none yet, the service is first started there.
     */
    static Function<Object, Object> dispatcher() {
        Function<Object, Object> d = registered();
        if (d == null && FijiPython.attach()) {
            d = registered();
        }
        return d;
    }

    @SuppressWarnings("unchecked")
    private static Function<Object, Object> registered() {
        Object d = System.getProperties().get(KEY);
        if (!(d instanceof Function)) {
            d = IJ.getProperty(KEY);
        }
        return d instanceof Function ? (Function<Object, Object>) d : null;
    }

    /** True when the Python service is registered in this JVM (this starts nothing). */
    public static boolean isRunning() {
        return registered() != null;
    }

    private static String notRunning() {
        String why = FijiPython.failure();
        return why == null ? NOT_RUNNING : NOT_RUNNING + "; " + why;
    }

    /**
     * Sends one request to Python and returns its reply.
     *
     * @param command the command name (segment, measure, train, models, about, ping, cancel...)
     * @param args the request entries besides the command (options, image, display...); may be null
     * @return the reply entries
     * @throws BridgeException with a one-line message when Python reports an error or is not running
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> request(String command, Map<String, Object> args) {
        Function<Object, Object> d = dispatcher();
        if (d == null) {
            throw new BridgeException(notRunning(), "NotRunning");
        }
        Map<String, Object> req = new HashMap<String, Object>();
        if (args != null) {
            req.putAll(args);
        }
        req.put("command", command);
        Object reply;
        try {
            reply = d.apply(req);
        } catch (RuntimeException e) {
            // The Python side catches its own errors; this is a bridge failure (e.g. the interpreter is shutting down).
            throw new BridgeException("the Python service failed: " + e, "InternalError");
        }
        if (!(reply instanceof Map)) {
            throw new BridgeException("the Python service returned no reply", "InternalError");
        }
        Map<String, Object> result = (Map<String, Object>) reply;
        Object error = result.get("error");
        if (error != null) {
            Object kind = result.get("kind");
            throw new BridgeException(error.toString(), kind == null ? null : kind.toString());
        }
        return result;
    }

    // ------------------------------------------------------------------------------------------ macro string API

    /** {@code call("epyseg.bridge.PyBridge.call", command)}: a command without options. */
    public static String call(String command) {
        return call(command, "");
    }

    /**
     * {@code call("epyseg.bridge.PyBridge.call", command, options)}: runs a command for a macro and returns its
     * value as a string; on error the macro stops with the error message (as a built-in macro function would).
     */
    public static String call(String command, String options) {
        Map<String, Object> args = new HashMap<String, Object>();
        args.put("options", options == null ? "" : options);
        args.put("display", Boolean.TRUE);
        try {
            Object value = request(command, args).get("value");
            return value == null ? "" : value.toString();
        } catch (BridgeException e) {
            report(e);
            return "";
        }
    }

    // ------------------------------------------------------------------------------------------------ Jython API

    /**
     * Segments an image and returns the results without displaying them: "labels" and "outlines" (ImagePlus),
     * "rois" (Roi[]), "results" (ResultsTable), "cells" (Integer), as chosen by {@code output=[...]} in options.
     */
    public static Map<String, Object> segment(ImagePlus imp, String options) {
        return withImage("segment", imp, options);
    }

    /** Measures the cells of a label image (or TA outline mask): "rois", "results", "cells". */
    public static Map<String, Object> measure(ImagePlus labels, String options) {
        return withImage("measure", labels, options);
    }

    /** Trains a model (options as for the "EPySeg Train" command); returns the reply (e.g. "value", "path"). */
    public static Map<String, Object> train(String options) {
        Map<String, Object> args = new HashMap<String, Object>();
        args.put("options", options == null ? "" : options);
        return request("train", args);
    }

    /** Asks the running job to stop at the next tile batch or training step. */
    public static void cancel() {
        request("cancel", null);
    }

    private static Map<String, Object> withImage(String command, ImagePlus imp, String options) {
        if (imp == null) {
            throw new BridgeException("no image given", "InputError");
        }
        Map<String, Object> args = new HashMap<String, Object>();
        args.put("image", imp);
        args.put("options", options == null ? "" : options);
        args.put("display", Boolean.FALSE);
        return request(command, args);
    }

    // ---------------------------------------------------------------------------------------------- errors

    /**
     * Shows an error the ImageJ way. A macro run by epyseg-ij ({@link MacroRun}) is stopped and reports the error
     * itself. Inside another running macro the macro is aborted with the message (a "Macro Error" dialog in the GUI,
     * one line on stderr headless); outside a macro an error dialog (GUI) or a line on stderr. A cancellation aborts
     * the macro quietly.
     */
    public static void report(BridgeException e) {
        String message = e.getMessage();
        boolean cancelled = e.isCancelled();
        System.getProperties().put(LAST_ERROR, message);
        IJ.showProgress(1.0);
        IJ.showStatus(cancelled ? "EPySeg: cancelled" : "EPySeg: " + message);
        MacroRun run = MacroRun.current();
        if (run != null) {
            run.abort(message, cancelled);
            return;
        }
        boolean dialogs = !GraphicsEnvironment.isHeadless() && !"log".equals(System.getProperty(ERRORS));
        Interpreter interp = Interpreter.getInstance(); // ImageJ's latest macro: right unless several run at once
        if (interp != null && !interp.done()) {
            if (cancelled || !dialogs) {
                if (!cancelled) {
                    log(lineMessage(lineNumber(interp), message));
                }
                interp.setIgnoreErrors(true); // abort without the dialog (the only kind of error display it has)
            }
            interp.abort(message);
        } else if (!cancelled) {
            if (dialogs) {
                IJ.error("EPySeg", message);
            } else {
                log("epyseg-ij: error: " + message);
            }
        }
    }

    /** {@code epyseg-ij: macro error in line N: message}, the one line of every macro error. */
    public static String lineMessage(int line, String message) {
        return "epyseg-ij: macro error" + (line > 0 ? " in line " + line : "") + ": " + message;
    }

    /** The line the macro is executing; 0 if unknown. */
    static int lineNumber(Interpreter interp) {
        try {
            return interp.getLineNumber();
        } catch (RuntimeException e) {
            return 0;
        }
    }

    private static void log(String line) {
        if (GraphicsEnvironment.isHeadless()) {
            System.err.println(line);
        } else {
            IJ.log(line);
        }
    }
}
